"""pad_buckets: a few static batch lengths, fitted to the run's own batches with the fewest pad tokens."""

import itertools
import json
import random

import pytest

from finetune_compare.training.buckets import BucketCollator, bucket_for, choose_buckets, run_buckets


def _padded(maxima, sizes, buckets):
    return sum(bucket_for(m, buckets) * s for m, s in zip(maxima, sizes))


def test_the_chosen_buckets_waste_the_fewest_pad_tokens():
    rng = random.Random(0)
    for _ in range(30):
        maxima = [rng.randint(5, 60) for _ in range(rng.randint(3, 12))]
        sizes = [rng.choice([8, 8, 8, 3]) for _ in maxima]
        top, n = 64, rng.randint(1, 4)
        chosen = choose_buckets(maxima, sizes, n, top)
        assert chosen[-1] == top and len(chosen) <= n and chosen == sorted(set(chosen))
        # brute force over every set of n - 1 lengths below the top
        candidates = sorted(set(maxima))
        best = min(_padded(maxima, sizes, sorted({*c, top}))
                   for k in range(n) for c in itertools.combinations(candidates, k))
        assert _padded(maxima, sizes, chosen) == best


def test_enough_buckets_pad_like_dynamic_padding_and_the_top_holds_every_split():
    maxima, sizes = [12, 30, 12, 50], [8, 8, 8, 8]
    assert choose_buckets(maxima, sizes, 10, 50) == [12, 30, 50]
    lengths = [3, 9, 14, 27, 5, 8, 31, 2, 6, 11, 19, 4]
    buckets = run_buckets(lengths, [40, 7], batch_size=4, seed=1, n=2)
    assert buckets[-1] == 40 and len(buckets) <= 2  # a validation text longer than any training text still fits
    assert all(b % 8 == 0 for b in run_buckets(lengths, [40], 4, 1, 3, multiple=8))


def test_the_collator_pads_each_batch_up_to_its_bucket():
    from transformers import AutoTokenizer

    from finetune_compare.models.resolve import embedded_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    collate = BucketCollator(tokenizer, [8, 16, 32])
    short = [{"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "labels": 0}]
    batch = collate(short + [{"input_ids": [101] + [7] * 9 + [102], "attention_mask": [1] * 11, "labels": 1}])
    assert batch["input_ids"].shape == (2, 16) and int(batch["attention_mask"].sum()) == 14
    assert collate(short)["input_ids"].shape == (1, 8)
    assert collate([{"input_ids": [7] * 40, "attention_mask": [1] * 40, "labels": 0}])["input_ids"].shape == (1, 40)


@pytest.mark.slow
def test_a_run_with_buckets_records_them_and_matches_dynamic_padding(tmp_path):
    """Pad tokens are masked, so with dropout off the first step's loss is the dynamic-padding run's."""
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    from ..conftest import make_tiny_bert, tiny_config

    model = str(make_tiny_bert(tmp_path / "model", dropout=0.0))
    runs = {}
    for name, buckets in (("dynamic", 0), ("buckets", 3)):
        config = tiny_config(model, tmp_path, num_epochs=1, methods=["full"], evaluate_base_model=False,
                             pad_buckets=buckets, output_dir=str(tmp_path / name))
        ComparisonExperiment(config).run_multiple_runs()
        folder = tmp_path / name / "runs" / "full" / "seed-7"
        runs[name] = (json.loads((folder / "metrics.json").read_text()),
                      json.loads((folder / "history.json").read_text()))
    dynamic, bucketed = runs["dynamic"][0]["training"], runs["buckets"][0]["training"]
    assert dynamic["bucket_lengths"] is None and 1 <= len(bucketed["bucket_lengths"]) <= 3
    assert bucketed["bucket_lengths"][-1] <= runs["buckets"][0]["data"]["max_length"]
    assert bucketed["padding_fraction"] >= dynamic["padding_fraction"] > 0
    first = [h["train"][0]["loss"] for _, h in runs.values()]
    assert first[0] == pytest.approx(first[1], abs=1e-4)
