"""Declared training budgets: equal for every method in steps, examples or seconds, recorded and stated."""

import json
import logging
from pathlib import Path

import pytest

from finetune_compare import Config, ConfigError
from finetune_compare.training.trainer import WallTimeBudget, budget_steps, build_training_args, planned_steps


def test_a_declared_budget_is_one_value_for_every_method():
    assert Config(budget_unit="steps", budget=100).budget == 100.0
    with pytest.raises(ConfigError, match="config key 'budget': required when budget_unit is 'steps'"):
        Config(budget_unit="steps")
    with pytest.raises(ConfigError, match="config key 'budget': only read with budget_unit steps, examples or"):
        Config(budget=100)
    with pytest.raises(ConfigError, match="'method_overrides.lora.budget': a declared budget is the same for every"):
        Config(budget_unit="steps", budget=100, method_overrides={"lora": {"budget": 200}})


def test_a_per_method_epoch_count_that_a_step_budget_replaces_is_warned_about(caplog):
    Config(budget_unit="steps", budget=100, method_overrides={"lora": {"num_epochs": 6}})
    assert "method_overrides.lora.num_epochs=6 does not apply: budget_unit 'steps' gives every method" in caplog.text


def test_the_trainer_gets_the_budget_as_its_step_count(tmp_path):
    def args(**kw):
        cfg = Config(batch_size=8, num_epochs=3, evaluations_per_epoch=2, **kw).training
        return cfg, build_training_args(cfg, 1e-3, 0, tmp_path, 400, "no", "cpu")

    cfg, a = args()
    assert a.max_steps == -1 and planned_steps(cfg, 400) == 150 and budget_steps(cfg) is None
    cfg, a = args(budget_unit="steps", budget=30)
    assert a.max_steps == 30 == planned_steps(cfg, 400) and a.eval_steps == 15  # two evaluations in 30 steps
    cfg, a = args(budget_unit="examples", budget=1000)
    assert a.max_steps == 125  # 1000 examples at 8 per step
    cfg, a = args(budget_unit="seconds", budget=60)
    assert a.max_steps == -1 and planned_steps(cfg, 400) == 150  # num_epochs caps it; the clock stops it


def test_a_time_budget_stops_training_when_it_is_spent():
    from transformers import TrainerControl

    clock = WallTimeBudget(0.0)
    clock.on_train_begin(None, None, TrainerControl())
    control = TrainerControl()
    clock.on_step_end(None, None, control)
    assert control.should_training_stop and control.should_evaluate and clock.stopped


@pytest.mark.slow
def test_both_methods_train_the_declared_budget_and_the_report_says_so(tiny_bert, tmp_path, caplog):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment
    from tests.conftest import tiny_config

    cfg = tiny_config(tiny_bert, tmp_path, num_runs=3, budget_unit="steps", budget=6,
                      method_overrides={"lora": {"num_epochs": 5}})
    with caplog.at_level(logging.INFO, logger="finetune_compare"):
        ComparisonExperiment(cfg).run_multiple_runs()
    out = Path(cfg.output_dir)
    for method in ("full", "lora"):
        for seed in (7, 8, 9):
            training = json.loads((out / "runs" / method / f"seed-{seed}" / "metrics.json").read_text())["training"]
            assert training["steps"] == 6 and training["budget"] == {"unit": "steps", "value": 6.0}
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["efficiency"]["lora"]["budget"] == comparison["efficiency"]["full"]["budget"]
    assert "with the same declared budget of 6 optimizer steps each (ran " in " ".join(comparison["headline"])
    assert "the same declared budget of 6 optimizer steps" in (out / "report.md").read_text()
    assert "lora seed 7: 6 optimizer steps (the declared budget)" in caplog.text  # not "over up to 5 epochs"


def test_the_efficiency_plot_s_legend_states_each_method_s_budget():
    from finetune_compare.analysis.plots import budget_label

    declared = [{"training": {"steps": 6, "epochs_run": 0.4, "budget": {"unit": "steps", "value": 6.0}}}] * 2
    assert budget_label([r["training"] for r in declared]) == "budget 6 optimizer steps, ran 6 steps"
    own = [{"training": {"steps": 104, "epochs_run": 4.0, "budget": {"unit": "epochs", "value": 4}}},
           {"training": {"steps": 104, "epochs_run": 4.0}}]  # a run recorded before budgets were
    assert budget_label([r["training"] for r in own]) == "4 epochs, 104 steps"
