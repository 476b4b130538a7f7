import numpy as np

from finetune_compare.training.sampler import LengthGroupedShuffledSampler, padding_fraction


def _lengths(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    # a 3-source mix: 1/3 long reviews, 2/3 short sentences and tweets
    return [int(rng.integers(150, 400)) if i % 3 == 0 else int(rng.integers(10, 50)) for i in range(n)]


def test_every_index_once_per_epoch_and_batches_aligned():
    lengths = _lengths(1003)
    sampler = LengthGroupedShuffledSampler(lengths, batch_size=16, seed=1)
    order = list(iter(sampler))
    assert sorted(order) == list(range(1003))
    batches = sampler.batches()  # epoch 1 now
    assert all(len(b) == 16 for b in batches[:-1]) and len(batches[-1]) == 1003 % 16


def test_cuts_padding_versus_random_batches():
    lengths = _lengths()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(lengths)).tolist()
    random_batches = [perm[i:i + 16] for i in range(0, len(perm), 16)]
    grouped = LengthGroupedShuffledSampler(lengths, batch_size=16, seed=0).batches()
    assert padding_fraction(lengths, random_batches) > 0.5
    assert padding_fraction(lengths, grouped) < 0.1


def test_batch_order_is_shuffled_not_long_to_short():
    """Consecutive batches must not run through one length band (one source) at a time."""
    lengths = _lengths()
    batches = LengthGroupedShuffledSampler(lengths, batch_size=16, seed=0).batches()
    is_long = [max(lengths[i] for i in b) > 100 for b in batches[:-1]]
    switches = sum(a != b for a, b in zip(is_long, is_long[1:]))
    # with random order the long/short kind changes often; sorted order would change ~once per megabatch
    assert switches > len(is_long) / 4


def test_deterministic_per_seed_and_new_order_each_epoch():
    lengths = _lengths()
    a = LengthGroupedShuffledSampler(lengths, 16, seed=3)
    b = LengthGroupedShuffledSampler(lengths, 16, seed=3)
    first_a, first_b = list(iter(a)), list(iter(b))
    assert first_a == first_b
    assert list(iter(a)) != first_a  # next epoch
    assert list(iter(LengthGroupedShuffledSampler(lengths, 16, seed=4))) != first_a


def test_step_token_counts_are_the_padded_tokens_of_the_runs_own_steps():
    from finetune_compare.training.sampler import round_up, step_token_counts

    lengths = [5, 9, 3, 17, 8, 2, 11, 4, 6, 13]
    sampler = LengthGroupedShuffledSampler(lengths, 4, seed=3)
    epochs = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        epochs.append([max(lengths[i] for i in b) * len(b) for b in sampler.batches()])
    assert step_token_counts(lengths, 4, 1, 3, "length", 6) == epochs[0] + epochs[1]
    # two micro-batches a step; an epoch's last step holds what is left; the collator's multiple rounds up
    assert step_token_counts(lengths, 4, 2, 3, "length", 2) == [epochs[0][0] + epochs[0][1], epochs[0][2]]
    assert all(t % 8 == 0 for t in step_token_counts(lengths, 4, 1, 3, "length", 6,
                                                         pad_to=lambda m: round_up(m, 8)))
    assert len(step_token_counts(lengths, 4, 1, 3, "random", 7)) == 7
