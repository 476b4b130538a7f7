import numpy as np
import pytest

from finetune_compare.data.sampling import allocate, augment_text, draw, stratified_split


def test_equal_allocation_water_fills():
    # SST has few negatives: it gives all it has, the others share the rest equally
    assert allocate(15000, {"imdb": 12400, "sst5": 3304, "tweeteval": 7093}, "equal") == {
        "imdb": 5848, "sst5": 3304, "tweeteval": 5848}
    assert allocate(9, {"a": 10, "b": 10, "c": 10}, "equal") == {"a": 3, "b": 3, "c": 3}
    assert sum(allocate(10, {"a": 10, "b": 10, "c": 10}, "equal").values()) == 10


def test_proportional_allocation():
    assert allocate(100, {"a": 300, "b": 100}, "proportional") == {"a": 75, "b": 25}
    assert sum(allocate(7, {"a": 1, "b": 1, "c": 1}, "proportional").values()) == 3


def test_allocation_never_exceeds_availability():
    for policy in ("equal", "proportional"):
        alloc = allocate(1000, {"a": 5, "b": 0, "c": 7}, policy)
        assert alloc == {"a": 5, "b": 0, "c": 7}


def test_draw_with_and_without_upsampling():
    rng = np.random.default_rng(0)
    assert sorted(draw(rng, list(range(5)), 10)) == list(range(5))
    up = draw(rng, list(range(5)), 12, upsample=True)
    assert len(up) == 12 and set(up) == set(range(5))


def test_stratified_split_keeps_every_stratum_and_singletons():
    items = list(range(103))
    keys = [(i % 3, "s" if i < 100 else "lonely") for i in items]
    rest, held = stratified_split(np.random.default_rng(1), items, keys, 0.2)
    assert sorted(rest + held) == items
    assert 100 not in held and 101 not in held and 102 not in held  # singleton strata stay in training
    for k in range(3):
        assert abs(sum(1 for i in held if i % 3 == k) - 0.2 * sum(1 for i in range(100) if i % 3 == k)) <= 1


def test_augment_is_seeded_and_label_free():
    a = augment_text(np.random.default_rng(3), "one two three four five six seven")
    b = augment_text(np.random.default_rng(3), "one two three four five six seven")
    assert a == b and a != "one two three four five six seven"
    assert augment_text(np.random.default_rng(3), "short") == "short"


@pytest.mark.parametrize("policy", ["unknown"])
def test_unknown_policy(policy):
    with pytest.raises(ValueError):
        allocate(5, {"a": 10, "b": 10}, policy)
