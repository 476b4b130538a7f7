"""A pre-registered study: its declarations and its plan from a pilot, written before training, kept beside it."""

import json
import shutil
from pathlib import Path

import pytest

from finetune_compare import Config, ConfigError

PILOT = Path(__file__).resolve().parents[2] / "docs" / "results" / "quickstart"


def test_a_pilot_needs_something_to_plan_for():
    assert Config(pilot="x", effect_of_interest=0.02).pilot == "x"
    with pytest.raises(ConfigError, match="config key 'pilot': plans a study for effect_of_interest or equivalence"):
        Config(pilot="x", equivalence_margin=None)


def test_the_declarations_and_plan_are_written_once(tmp_path):
    from finetune_compare.experiments.commands.preregistration import preregister
    from finetune_compare.experiments.study.study_plan import study_plan

    pilot = tmp_path / "pilot"
    shutil.copytree(PILOT, pilot)
    cfg = Config(effect_of_interest=0.05, pilot=str(pilot), num_runs=12)
    record = preregister(study_plan(cfg, tmp_path / "out"))
    stored = json.loads((tmp_path / "out" / "preregistration.json").read_text())
    assert stored == record and stored["effect_of_interest"] == 0.05 and stored["pairs_run"] == 12
    assert any("to detect a true difference of ±0.05 with 80% probability" in line for line in stored["plan"])
    # a resumed command keeps the first record (the declarations are result-affecting config keys)
    assert preregister(study_plan(cfg.replace(num_runs=20), tmp_path / "out"))["pairs_run"] == 12
    assert preregister(study_plan(Config(), tmp_path / "other")) is None and not (tmp_path / "other").exists()
    assert "search_spaces" not in stored  # nothing is tuned


def test_a_tuned_study_declares_every_method_s_search_space(tmp_path):
    """Tuned against tuned, with a peft type by name: each method's space is in the record before any trial."""
    from finetune_compare.experiments.commands.preregistration import preregister
    from finetune_compare.experiments.search.optimize import search_space_for
    from finetune_compare.experiments.study.study_plan import study_plan

    pilot = tmp_path / "pilot"
    shutil.copytree(PILOT, pilot)
    cfg = Config(effect_of_interest=0.05, pilot=str(pilot), methods=["full", "lora", "hra"], tune_trials=4)
    record = preregister(study_plan(cfg, tmp_path / "out"))
    assert sorted(record["search_spaces"]) == ["full", "hra", "lora"]
    space = record["search_spaces"]["hra"]
    assert space == search_space_for(cfg, "hra")
    assert space["hra_learning_rate"]["log"] and space["hra_r"]["type"] == "categorical"  # rate and capacity


@pytest.mark.slow
def test_a_preregistered_comparison_records_its_plan_in_the_report(tiny_bert, tmp_path):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment
    from tests.conftest import tiny_config

    pilot = tmp_path / "pilot"
    shutil.copytree(PILOT, pilot)
    cfg = tiny_config(tiny_bert, tmp_path, num_runs=3, effect_of_interest=0.05, pilot=str(pilot))
    result = ComparisonExperiment(cfg).run_multiple_runs()
    assert result["preregistration"]["effect_of_interest"] == 0.05
    report = (Path(cfg.output_dir) / "report.md").read_text()
    assert "**Pre-registered**" in report and "effect of interest ±0.05" in report
    assert "Plan from the pilot" in report
    with pytest.raises(Exception, match="does not exist|is not a directory"):
        ComparisonExperiment(cfg.replace(pilot=str(tmp_path / "nope"), output_dir=str(tmp_path / "o2"))
                             ).run_multiple_runs()
