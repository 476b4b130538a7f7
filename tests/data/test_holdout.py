"""Held-out sources: training and validation never see them (near-duplicates included), the test set keeps them,
and the runs score them apart."""

import json

import numpy as np
import pytest

from finetune_compare import Config
from finetune_compare.config import load_config
from finetune_compare.data.build import build_data, load_pools
from finetune_compare.errors import ConfigError, DataError
from finetune_compare.evaluation.metrics import evaluation_metrics
from finetune_compare.metric_names import MetricKey, record_keys

from .test_own_data import write_jsonl


def own_rows(n: int, group: str, offset: int = 0, labels=("pos", "neg")) -> list[dict]:
    return [{"text": f"{group} review {i + offset} says {labels[i % len(labels)]}", "label": labels[i % len(labels)],
             "shop": group} for i in range(n)]


def own_config(tmp_path, train: list[dict], test: list[dict], **kw) -> Config:
    return Config(data_source="files", train_file=write_jsonl(tmp_path / "train.jsonl", train),
                  test_file=write_jsonl(tmp_path / "test.jsonl", test), group_column="shop",
                  output_dir=str(tmp_path / "out"), **kw)


def test_a_held_out_source_is_tested_but_never_trained_or_validated_on():
    cfg = Config(data_source="embedded", samples_per_class=60, test_samples_per_class=30, val_fraction=0.2,
                 holdout_sources=["tweeteval"])
    data = build_data(cfg.data, cfg.seed)
    assert {e.source for e in data.train + data.validation} == {"imdb", "sst5"}
    assert "tweeteval" in {e.source for e in data.test}
    assert data.holdout == ("tweeteval",)
    assert data.report["holdout"]["sources"] == ["tweeteval"]
    # the held-out source's classes are still drawn from the others: every class is trained on
    assert {e.label for e in data.train} == {0, 1, 2}


def test_without_held_out_sources_the_draw_is_unchanged():
    """Holding out is a filter at draw time: a config without it draws exactly what it drew before."""
    cfg = Config(data_source="embedded", samples_per_class=60, test_samples_per_class=30, val_fraction=0.2)
    pools = load_pools(cfg.data)
    assert build_data(cfg.data, cfg.seed, pools=pools).fingerprint == build_data(cfg.data, cfg.seed).fingerprint


def test_a_held_out_text_placed_in_a_training_file_is_never_trained_on(tmp_path):
    """Leakage: the held-out group's texts, copied (case and spacing changed) into another group's training and
    validation rows, are dropped from them, as the pipeline drops a test text from training."""
    leaked = own_rows(40, "south")
    train = own_rows(80, "north") + leaked
    # the same texts, under the group that is trained on, with other case and spacing
    copies = [{**r, "text": "  " + r["text"].upper().replace(" ", "   "), "shop": "north"} for r in leaked[:10]]
    validation = own_rows(30, "north", offset=500) + [{**r, "shop": "north"} for r in leaked[10:15]]
    cfg = own_config(tmp_path, train + copies, own_rows(20, "north", offset=900) + own_rows(20, "south", offset=900),
                     holdout_sources=["south"],
                     validation_file=write_jsonl(tmp_path / "validation.jsonl", validation))
    data = build_data(cfg.data, cfg.seed)
    seen = {" ".join(e.text.casefold().split()) for e in data.train + data.validation}
    assert not seen & {" ".join(r["text"].casefold().split()) for r in leaked}
    assert all(e.source == "north" for e in data.train + data.validation)
    assert data.report["holdout"]["train_rows_removed"] == {"north": 15}  # 10 training copies, 5 validation
    assert {e.source for e in data.test} == {"north", "south"}


def test_a_class_only_the_held_out_groups_have_is_an_error_that_names_it(tmp_path):
    train = own_rows(40, "north", labels=("pos", "neg")) + own_rows(30, "south", labels=("pos", "neg", "mixed"))
    test = own_rows(30, "north", offset=900, labels=("pos", "neg", "mixed"))
    cfg = own_config(tmp_path, train, test, holdout_sources=["south"])
    with pytest.raises(DataError, match="class 'mixed' exists only in the held-out sources \\(south\\)"):
        build_data(cfg.data, cfg.seed)


def test_a_held_out_group_the_data_does_not_have_is_named(tmp_path):
    cfg = own_config(tmp_path, own_rows(40, "north"), own_rows(20, "north", offset=900), holdout_sources=["west"])
    with pytest.raises(DataError, match="holdout_sources: 'west' is not a group of the data \\(groups: north\\)"):
        build_data(cfg.data, cfg.seed)


@pytest.mark.parametrize("sets, message", [
    (["holdout_sources=[yelp]"], "'yelp' is not one of sources"),
    (["holdout_sources=[imdb,sst5,tweeteval]"], "every source .* is held out"),
    (["holdout_sources=[imdb,imdb]"], "duplicate entries"),
    (["primary_metric=macro_f1_out_of_domain"], "need holdout_sources"),
    (["sources=[imdb]", "primary_metric=macro_f1_imdb"], "is not a score these runs record"),
])
def test_bad_held_out_settings_are_one_clear_error(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config("configs/quickstart.yaml", sets)


def test_own_data_holds_out_groups_of_its_group_column_only(tmp_path):
    with pytest.raises(ConfigError, match="names values of group_column, which is not set"):
        Config(data_source="files", train_file="a.csv", test_file="b.csv", holdout_sources=["x"])


def test_an_out_of_domain_score_can_be_the_primary_metric():
    cfg = load_config("configs/quickstart.yaml", ["holdout_sources=[tweeteval]",
                                                  "primary_metric=macro_recall_out_of_domain"])
    assert cfg.experiment.primary_metric == "macro_recall_out_of_domain"


def test_a_leave_one_source_out_sweep_is_one_setting():
    from finetune_compare.config.loading import parse_sweep
    from finetune_compare.experiments.study.study_plan import sweep_points

    cfg = load_config("configs/quickstart.yaml", sweep=parse_sweep(["holdout_sources=imdb,sst5,tweeteval"]))
    assert [p.data.holdout_sources for _, p in sweep_points(cfg)] == [["imdb"], ["sst5"], ["tweeteval"]]


def test_the_scores_are_split_by_domain_and_read_by_their_keys():
    y = np.array([0, 1, 2, 0, 1, 2])
    p = np.array([0, 1, 2, 1, 1, 0])
    test = evaluation_metrics(y, p, ["a", "a", "a", "b", "b", "b"], ("x", "y", "z"), holdout=["b"])
    assert test["domain"]["held_out"] == ["b"]
    assert test["domain"]["in_domain"]["accuracy"] == 1.0 == test["per_source"]["a"]["accuracy"]
    assert test["domain"]["out_of_domain"]["accuracy"] == pytest.approx(1 / 3)
    names = {k.name: k for k in record_keys(test)}
    assert names["macro_recall_out_of_domain"] == MetricKey("macro_recall", "domain", "out_of_domain")
    assert names["accuracy_in_domain"].value(test) == 1.0
    assert "domain" not in evaluation_metrics(y, p, ["a"] * 6, ("x", "y", "z"))  # without held-out sources: none
    json.dumps(test)


def test_the_data_summary_prints_a_held_out_source_with_no_training_rows():
    """`finetune-compare data` with a held-out source: its empty training rows print as '-', and the summary says
    what was held out (it crashed on the empty length statistics)."""
    from finetune_compare.data.summary import data_summary, format_summary

    cfg = Config(data_source="embedded", samples_per_class=60, test_samples_per_class=30, val_fraction=0.2,
                 holdout_sources=["tweeteval"])
    text = format_summary(data_summary(build_data(cfg.data, cfg.seed)))
    assert "held out of training and validation (tested as out-of-domain): TweetEval" in text
    assert "train: 'neutral' has no TweetEval" not in text  # missing by design, not a confound
