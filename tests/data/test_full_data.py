"""Checks on the complete official datasets; they run when FINETUNE_COMPARE_DATA_DIR is set."""

import os
from collections import Counter

import pytest

from finetune_compare import Config
from finetune_compare.data.build import build_data
from finetune_compare.data.loading import read_local
from finetune_compare.data.sources import SOURCES

DATA_DIR = os.environ.get("FINETUNE_COMPARE_DATA_DIR")


def build(cfg: Config, **kw):
    """The data stage receives only its section, plus the experiment's seed (which draws the test set)."""
    return build_data(cfg.data, cfg.seed, **kw)


pytestmark = pytest.mark.skipif(not DATA_DIR, reason="set FINETUNE_COMPARE_DATA_DIR to a full copy (../shared/data)")

OFFICIAL = {
    "tweeteval": {"train": 45615, "validation": 2000, "test": 12284},
    "sst5": {"train": 8544, "validation": 1101, "test": 2210},
    "imdb": {"train": 25000, "test": 25000},
}


@pytest.fixture(scope="module")
def bundle():
    return build(Config(data_source="local", data_dir=DATA_DIR))


@pytest.mark.slow
def test_official_counts():
    for name, splits in OFFICIAL.items():
        for split, n in splits.items():
            assert len(read_local(DATA_DIR, SOURCES[name], split)) == n, (name, split)


def test_label_mapping_per_class_on_full_data():
    sst = Counter(r.native_label for r in read_local(DATA_DIR, SOURCES["sst5"], "train"))
    assert sst == {0: 1092, 1: 2218, 2: 1624, 3: 2322, 4: 1288}
    # SST-5 {0,1} -> negative, 2 -> neutral, {3,4} -> positive
    mapped = Counter(SOURCES["sst5"].to_class(k) for k, n in sst.items() for _ in range(n))
    assert mapped == {0: 3310, 1: 1624, 2: 3610}
    imdb = Counter(SOURCES["imdb"].to_class(r.native_label) for r in read_local(DATA_DIR, SOURCES["imdb"], "test"))
    assert imdb == {0: 12500, 2: 12500}


@pytest.mark.slow
def test_leakage_counts(bundle):
    leak = bundle.report["leakage"]
    assert leak["imdb"]["train_rows_removed"] == 123
    assert leak["sst5"]["train_rows_removed"] == 4
    assert leak["tweeteval"]["train_rows_removed"] == 0


def test_default_sizes_and_balance(bundle):
    assert Counter(e.label for e in bundle.train + bundle.validation) == {0: 15000, 1: 15000, 2: 15000}
    assert Counter(e.label for e in bundle.test) == {0: 2000, 1: 2000, 2: 2000}
    assert bundle.report["allocation"]["train"]["neutral"] == {"sst5": 1622, "tweeteval": 13378}


@pytest.mark.slow
def test_two_builds_with_one_seed_are_identical(bundle):
    again = build(Config(data_source="local", data_dir=DATA_DIR))
    assert again.fingerprint == bundle.fingerprint
