"""Tuned against tuned in one command: each method's own study on validation, then the paired runs."""

import datetime
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST_SEARCH_SPACE as FAST
from tests.conftest import tiny_config


def test_the_tune_trials_key_and_flag():
    from finetune_compare import Config, ConfigError
    from finetune_compare.cli import build_parser

    assert Config(tune_trials=5).tune_trials == 5
    with pytest.raises(ConfigError, match="'method_overrides.lora.tune_trials': 'tune_trials' cannot differ"):
        Config(method_overrides={"lora": {"tune_trials": 3}})  # the same tuning budget for every method
    args = build_parser().parse_args(["compare", "--tune-trials", "4"])
    assert args.tune_trials == 4


@pytest.mark.slow
def test_compare_tunes_each_method_then_compares_their_best_settings(tiny_bert, tmp_path, capsys):
    import optuna

    from finetune_compare.cli import main
    from finetune_compare.experiments.search.studies import make_storage

    cfg = tiny_config(tiny_bert, tmp_path, num_runs=3, search_space=FAST, hpo_pruner="none", effect_of_interest=0.05)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["compare", "--config", str(path), "--tune-trials", "2"]) == 0
    out = Path(cfg.output_dir)
    summaries = {m: json.loads((out / "optimize" / m / "summary.json").read_text()) for m in ("full", "lora")}
    assert all(s["trials"] == 2 and s["best_params"] for s in summaries.values())  # equal tuning budgets
    for method, s in summaries.items():  # every paired run used its method's best settings
        key = "learning_rate" if method == "full" else "lora_learning_rate"
        for seed in (7, 8, 9):
            used = yaml.safe_load((out / "runs" / method / f"seed-{seed}" / "config.yaml").read_text())
            assert used[key] == pytest.approx(s["best_params"][key])
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison["tuning"]) == {"full", "lora"} and comparison["tuning"]["lora"]["trials"] == 2
    assert comparison["tuning"]["full"]["search_space"] == summaries["full"]["search_space"]
    assert "Tuned against tuned" in (out / "report.md").read_text()
    assert (out / "optimize" / "expected_validation.png").is_file()
    # pre-registered before anything trained, the tuning trials included, with the tuning budget declared
    pre = json.loads((out / "preregistration.json").read_text())
    assert pre["tune_trials"] == 2 and pre["effect_of_interest"] == 0.05
    storage = make_storage(None, out)
    first_trial = min(t.datetime_start for m in ("full", "lora")
                      for t in optuna.load_study(study_name=f"finetune-compare-{m}", storage=storage).trials)
    assert datetime.datetime.fromisoformat(pre["declared_at"]) <= first_trial.astimezone(datetime.timezone.utc)
    assert "2 tuning trials for each method" in (out / "report.md").read_text()
    printed = capsys.readouterr()
    # the same command again resumes: no new trial, no retraining
    assert main(["compare", "--config", str(path), "--tune-trials", "2"]) == 0
    again = {m: json.loads((out / "optimize" / m / "summary.json").read_text())["trials"] for m in ("full", "lora")}
    assert again == {"full": 2, "lora": 2}
    assert "training on" not in capsys.readouterr().err and printed
