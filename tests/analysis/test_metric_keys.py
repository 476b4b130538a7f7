"""Metric keys: one score is read where metrics.json nests it and named once, never parsed back from its name."""

import pytest

from finetune_compare.analysis.report_tables import label
from finetune_compare.evaluation.run_record import RunRecord
from finetune_compare.labels import CLASS_NAMES
from finetune_compare.metric_names import MetricKey, keys_by_name, metric_groups, record_keys

TEST = {"macro_f1": 0.7, "accuracy": 0.72, "macro_precision": 0.71, "macro_recall": 0.69,
        "per_class": {"neg": {"f1": 0.6}, "pos": {"f1": 0.8}},
        "per_source": {"movie_reviews": {"macro_f1": 0.65, "accuracy": 0.66}, "tweets": {"macro_f1": 0.75,
                                                                                         "accuracy": 0.78}}}


def test_a_key_reads_its_score_where_the_run_nests_it():
    assert MetricKey("macro_f1").value(TEST) == 0.7
    assert MetricKey("f1", "per_class", "pos").value(TEST) == 0.8
    assert MetricKey("accuracy", "per_source", "movie_reviews").value(TEST) == 0.66
    assert MetricKey("accuracy", "per_source", "missing").value(TEST) is None  # a part the run does not have


def test_a_key_has_one_flat_name_as_comparison_json_writes_it():
    assert [k.name for k in record_keys(TEST)] == [
        "macro_f1", "accuracy", "macro_precision", "macro_recall", "f1_neg", "f1_pos",
        "macro_f1_movie_reviews", "accuracy_movie_reviews", "macro_f1_tweets", "accuracy_tweets"]


def test_a_key_that_mixes_up_its_group_and_part_is_refused():
    with pytest.raises(ValueError):
        MetricKey("macro_f1", "per_source")  # a per-source score needs its source
    with pytest.raises(ValueError):
        MetricKey("macro_f1", "overall", "imdb")
    with pytest.raises(ValueError):
        MetricKey("macro_f1", "per_user", "u1")


def test_names_map_back_to_keys_from_what_the_comparison_records_not_from_the_name():
    # a group whose name holds an underscore and starts like a metric: no prefix split could tell them apart
    cmp = {"sources": ["accuracy_set", "b"], "labels": ["neg", "pos"]}
    known = keys_by_name(cmp)
    assert known["macro_f1_accuracy_set"] == MetricKey("macro_f1", "per_source", "accuracy_set")
    assert label("macro_f1_accuracy_set", known) == "macro f1 (accuracy_set)"
    assert label("accuracy_b", known) == "accuracy (b)"
    assert label("f1_neg", known) == "f1 neg"
    assert label("a_score_from_elsewhere", known) == "a score from elsewhere"  # unknown: shown as written


def test_one_source_has_no_per_source_group():
    assert metric_groups(["imdb"], CLASS_NAMES)["per_source"] == []
    assert [k.name for k in metric_groups(["imdb", "sst5"], CLASS_NAMES)["per_source"]] == [
        "macro_f1_imdb", "accuracy_imdb", "macro_f1_sst5", "accuracy_sst5"]


def test_a_record_read_back_from_an_older_file_gets_the_classes_that_version_meant():
    old = {"method": "lora", "seed": 1, "model_name": "m", "test": TEST, "params": {}, "timing": {}, "memory": {}}
    record = RunRecord.from_json(old)
    assert record.labels == list(CLASS_NAMES) and record.head is None and record.training is None
    assert RunRecord.from_json(record.to_json()) == record
