from collections import Counter

import pytest

from finetune_compare import Config
from finetune_compare.data.build import build_data
from finetune_compare.data.cleaning import normalise
from finetune_compare.data.summary import data_summary, format_summary
from finetune_compare.errors import DataError


def build(cfg: Config, **kw):
    """The data stage receives only its section, plus the experiment's seed (which draws the test set)."""
    return build_data(cfg.data, cfg.seed, **kw)


def embedded(**kw) -> Config:
    return Config(data_source="embedded", samples_per_class=200, test_samples_per_class=100, **kw)


def test_balanced_classes_and_stratified_validation():
    bundle = build(embedded())
    sample = bundle.train + bundle.validation
    assert Counter(e.label for e in sample) == {0: 200, 1: 200, 2: 200}
    assert Counter(e.label for e in bundle.test) == {0: 100, 1: 100, 2: 100}
    assert len(bundle.validation) == pytest.approx(60, abs=6)
    strata = Counter((e.label, e.source) for e in bundle.validation)
    for (label, source), n in Counter((e.label, e.source) for e in sample).items():
        assert strata[(label, source)] == pytest.approx(n * 0.1, abs=1)


def test_no_neutral_from_imdb_and_equal_mixing():
    bundle = build(embedded())
    assert not [e for e in bundle.train if e.source == "imdb" and e.label == 1]
    alloc = bundle.report["allocation"]["train"]
    assert alloc["negative"] == {"imdb": 67, "sst5": 66, "tweeteval": 67}
    assert alloc["neutral"] == {"sst5": 100, "tweeteval": 100}


def test_no_text_shared_between_splits():
    bundle = build(embedded())
    train = {normalise(e.text) for e in bundle.train}
    assert not train & {normalise(e.text) for e in bundle.validation}
    assert not train & {normalise(e.text) for e in bundle.test}
    assert len(train) == len(bundle.train)  # deduplicated


def test_same_seed_identical_other_seed_different():
    a, b, c = build(embedded()), build(embedded()), build(embedded(seed=1))
    assert a.fingerprint == b.fingerprint and a.train == b.train
    assert a.fingerprint != c.fingerprint


def test_shortfall_warns_and_uses_all(caplog):
    bundle = build(Config(data_source="embedded", samples_per_class=5000, test_samples_per_class=10))
    assert any("asked for 5000 'neutral' examples" in m for m in bundle.report["shortfalls"])
    assert "asked for 5000" in caplog.text
    neutral = sum(1 for e in bundle.train + bundle.validation if e.label == 1)
    assert neutral < 5000


def test_upsampling_only_when_enabled():
    bundle = build(Config(data_source="embedded", samples_per_class=1000, test_samples_per_class=10,
                               allow_upsampling=True))
    assert sum(1 for e in bundle.train + bundle.validation if e.label == 1) == 1000


def test_augmentation_only_in_train():
    bundle = build(embedded(augment=True, augment_fraction=0.5))
    aug = [e for e in bundle.train if e.id.endswith(":aug")]
    assert 0.3 * len(bundle.train) / 1.5 < len(aug) and bundle.report["augmented"] == len(aug)
    assert not [e for e in bundle.validation + bundle.test if e.id.endswith(":aug")]


def test_single_source_without_a_class_is_an_error():
    with pytest.raises(DataError, match="no 'neutral' examples in sources \\['imdb'\\]"):
        build(Config(data_source="embedded", sources=["imdb"], samples_per_class=10, test_samples_per_class=5))


def test_tiny_validation_is_an_error():
    with pytest.raises(DataError, match="validation split is too small to select a model on \\(0 examples"):
        build(Config(data_source="embedded", samples_per_class=3, test_samples_per_class=5, val_fraction=0.01))
    # the review's case: 15 per class gave a 2-example, one-class validation set that early stopping trusted
    with pytest.raises(DataError, match="needs >= 2 per class and >= 20 in all: raise samples_per_class \\(now 15\\)"):
        build(Config(data_source="embedded", samples_per_class=15, test_samples_per_class=5))


def test_data_seed_redraws_training_but_keeps_the_test_set():
    cfg = Config(data_source="embedded", samples_per_class=100, test_samples_per_class=10)
    a, b = build(cfg), build(cfg, data_seed=cfg.seed + 1)
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert {e.id for e in a.train} != {e.id for e in b.train}
    assert [e.id for e in build(cfg, data_seed=cfg.seed + 1).train] == [e.id for e in b.train]


def test_summary_reports_counts_lengths_drops_and_confounds():
    bundle = build(embedded())
    summary = data_summary(bundle)
    assert summary["counts"]["train"]["total"] == Counter(
        {c: sum(1 for e in bundle.train if e.label == i) for i, c in enumerate(["negative", "neutral", "positive"])})
    assert summary["char_lengths"]["test"]["imdb"]["p50"] > summary["char_lengths"]["test"]["tweeteval"]["p50"]
    assert any("'neutral' has no IMDB examples" in c for c in summary["confounds"])
    text = format_summary(summary)
    for needle in ("Examples per split x source x label", "Text length in characters", "Dropped before sampling",
                   "Confounds to keep in mind"):
        assert needle in text
