"""study_plan(), the one place seeds, pairs and run states come from: read from the folder, in the executors'
order, with each method's own settings."""

from __future__ import annotations

import json

from finetune_compare import Config
from finetune_compare.experiments.study.study_plan import (DONE, FAILED, TO_TRAIN, PairPlan, runs_per_method,
                                                            study_plan)


def _config(tmp_path, **values):
    return Config(output_dir=str(tmp_path / "out"), seed=7, num_runs=3, methods=["full", "lora"],
                  method_overrides={"lora": {"batch_size": 8}}, **values)


def test_the_runs_pair_by_pair_with_their_states_read_from_the_folder(tmp_path):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    (out / "runs" / "full" / "seed-7").mkdir(parents=True)
    (out / "runs" / "full" / "seed-7" / "metrics.json").write_text(json.dumps({"method": "full", "seed": 7}))
    (out / "runs" / "lora" / "seed-8").mkdir(parents=True)
    (out / "runs" / "lora" / "seed-8" / "failure.json").write_text("{}")
    (out / "runs" / "lora" / "seed-9").mkdir(parents=True)
    (out / "runs" / "lora" / "seed-9" / "metrics.json").write_text('{"cut off')  # not whole: not done
    plan = study_plan(cfg)
    assert plan.seeds == (7, 8, 9) and plan.methods == ("full", "lora")
    assert [(r.method, r.seed, r.pair, r.state) for r in plan.runs] == [
        ("full", 7, 0, DONE), ("lora", 7, 0, TO_TRAIN), ("full", 8, 1, TO_TRAIN), ("lora", 8, 1, FAILED),
        ("full", 9, 2, TO_TRAIN), ("lora", 9, 2, TO_TRAIN)]
    assert plan.pairs() == [PairPlan(0, 7, ("lora",)), PairPlan(1, 8, ("full", "lora")),
                            PairPlan(2, 9, ("full", "lora"))]
    assert [(r.method, r.seed) for r in plan.pending()][:2] == [("lora", 7), ("full", 8)]
    assert plan.seeds_in("lora", FAILED, TO_TRAIN) == [7, 8, 9] and plan.seeds_in("full", DONE) == [7]
    assert [r.config.training.batch_size for r in plan.runs[:2]] == [16, 8]  # each method's own settings
    assert runs_per_method([plan, plan]) == {"full": 6, "lora": 6}
    # a folder whose runs will not be kept (new, or cleared by --overwrite): everything to train
    assert {r.state for r in study_plan(cfg, resumes=False).runs} == {TO_TRAIN}


def test_a_tuned_plan_keeps_its_runs_with_the_tuned_settings(tmp_path):
    plan = study_plan(_config(tmp_path))
    tuned = plan.with_config(plan.config.replace(method_overrides={"lora": {"lora_learning_rate": 0.01}}))
    assert [(r.method, r.seed, r.state) for r in tuned.runs] == [(r.method, r.seed, r.state) for r in plan.runs]
    assert {r.config.method.lora_learning_rate for r in tuned.runs if r.method == "lora"} == {0.01}


def test_the_base_row_and_the_tuning_budget_are_listed(tmp_path):
    cfg = _config(tmp_path, tune_trials=4)
    assert study_plan(cfg).tune_trials == {"full": 4, "lora": 4} and not study_plan(cfg).base_done
    from finetune_compare.layout import Layout

    base = Layout(tmp_path / "out").base_run
    base.mkdir(parents=True)
    (base / "metrics.json").write_text("{}")
    assert study_plan(cfg).base_done and not study_plan(cfg, resumes=False).base_done
