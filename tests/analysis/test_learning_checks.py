"""Runs that did not learn are flagged, and a verdict resting on them says so."""

import json

import pytest

from finetune_compare.analysis.learning_checks import learning_caution, near_chance, no_gain
from finetune_compare.cli import main


def _test_block(accuracy, n=450, support=(150, 150, 150)):
    return {"n": n, "accuracy": accuracy, "per_class": {str(i): {"support": s} for i, s in enumerate(support)}}


def test_near_chance_is_the_majority_share_plus_two_standard_errors():
    # majority 1/3 of 450: bound 0.3333 + 2 * sqrt(1/3 * 2/3 / 450) = 0.3778
    assert near_chance(_test_block(0.377)).startswith("test accuracy 0.3770 is near chance (not above the majority "
                                                      "class's share 0.3333 by two standard errors, 0.3778)")
    assert near_chance(_test_block(0.40)) is None
    assert near_chance(_test_block(0.62, n=100, support=(60, 20, 20))) is not None  # the majority class alone: 0.6


def test_no_gain_reads_the_validation_curve(tmp_path):
    (tmp_path / "history.json").write_text(json.dumps({"train": [], "eval": [
        {"step": 5, "macro_f1": 0.41}, {"step": 10, "macro_f1": 0.39}, {"step": 15, "macro_f1": 0.41}]}))
    assert no_gain(tmp_path) == ("validation macro_f1 never rose above its first evaluation's (0.4100 at step 5): no "
                                 "sign that training improved it")
    (tmp_path / "history.json").write_text(json.dumps({"train": [], "eval": [
        {"step": 5, "macro_f1": 0.41}, {"step": 10, "macro_f1": 0.45}]}))
    assert no_gain(tmp_path) is None


def test_the_caution_counts_only_the_verdicts_own_runs():
    comparison = {"a": "lora", "b": "full", "primary": {"seeds": [1, 2, 3]}}
    assert learning_caution(comparison, [{"method": "lora", "seed": 9, "problems": ["x"]}]) is None
    text = learning_caution(comparison, [{"method": "full", "seed": 2, "problems": ["x"]},
                                         {"method": "dora", "seed": 1, "problems": ["x"]}])
    assert text.startswith("Caution: 1 of the runs this verdict uses show signs of not having learned")


@pytest.mark.slow
def test_a_two_step_budget_is_flagged_in_the_verdict_and_the_report(tmp_path, tiny_bert, capsys):
    out = tmp_path / "o"
    code = main(["compare", "--output-dir", str(out), "--set", f"model_name={tiny_bert}", "--set",
                 "data_source=embedded", "--set", "samples_per_class=40", "--set", "test_samples_per_class=20", "--set",
                 "val_fraction=0.2",
                 "--set", "batch_size=8", "--set", "mixed_precision=no", "--set", "num_threads=1", "--set",
                 "budget_unit=steps", "--set", "budget=2", "--set", "learning_rate=1e-6", "--set",
                 "lora_learning_rate=1e-6", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false"])
    assert code == 0
    cmp = json.loads((out / "comparison.json").read_text())
    assert cmp["not_learned"], "a 2-step budget at a rate of 1e-6 must be flagged"
    assert "Caution: " in cmp["headline"][0] and "barely trained models" in cmp["headline"][0]
    report = (out / "report.md").read_text()
    assert "may not have learned" in report and "Caution: " in report
