"""tune_extend through the real command: a method whose best setting lies at an edge of its search is tuned once more
over the widened space, the better search decides its settings, both are recorded and reported, and the same
command resumes without new trials. The trials' scores come from a stand-in objective (no training), so which
setting is best is known; the paired runs train for real. A method variant (a second name for LoRA with its own
targets) is tuned, run and reported as a method of its own."""

import json
import math
from pathlib import Path

import pytest
import yaml

from tests.conftest import FAST_SEARCH_SPACE as FAST
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
LORA_CENTRE = 10 ** -2.5  # the middle of lora's 1e-3 to 1e-2 (log): no edge


def stand_in_trials(study, ctx, method, space, n_trials, search=None):
    """full's score rises with its learning rate and its first trial sits at the top edge; the variant's peaks at the
    middle of its range, where its first trial sits."""
    from finetune_compare.experiments.search.studies import counted_trials
    from finetune_compare.experiments.search.trials import suggest

    key = "learning_rate" if method == "full" else "lora_learning_rate"
    if not search and not study.trials:
        study.enqueue_trial({key: 9.9e-4 if method == "full" else LORA_CENTRE})

    def objective(trial):
        suggest(trial, space)
        rate = trial.params[key]
        return 0.5 + rate if method == "full" else 0.5 - abs(math.log10(rate / LORA_CENTRE)) / 10

    study.optimize(objective, n_trials=n_trials - counted_trials(study))


def test_an_edge_is_widened_once_and_the_better_search_decides(tiny_bert, tmp_path, monkeypatch, capsys):
    from finetune_compare.cli import main
    from finetune_compare.experiments.search import optimize

    monkeypatch.setattr(optimize, "optimize_to_count", stand_in_trials)
    space = {**FAST, "lora_q": FAST["lora"]}
    cfg = tiny_config(tiny_bert, tmp_path, num_runs=3, search_space=space, hpo_pruner="none", tune_trials=3,
                      tune_extend=True, effect_of_interest=0.05, methods=["full", "lora_q"], save_model=True,
                      method_variants={"lora_q": {"base": "lora", "lora_target_modules": ["query"]}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["compare", "--config", str(path)]) == 0
    out = Path(cfg.output_dir) / "optimize"
    first = json.loads((out / "full" / "summary.json").read_text())
    assert [e["side"] for e in first["edges"]] == ["high"] and first["widened"]
    wider = json.loads((out / "full" / "extended" / "summary.json").read_text())
    assert wider["trials"] == 3  # the same trial count
    assert wider["search_space"]["learning_rate"]["high"] == pytest.approx(1e-3 * math.sqrt(10), rel=1e-2)
    assert wider["search_space"]["learning_rate"]["low"] == first["search_space"]["learning_rate"]["low"]
    assert not (out / "full" / "extended" / "extended").exists()  # once, whatever the second search found
    assert not (out / "lora_q" / "extended").exists() and json.loads(
        (out / "lora_q" / "summary.json").read_text())["edges"] == []
    decided = wider if wider["best_value"] > first["best_value"] else first
    runs = Path(cfg.output_dir) / "runs"
    for seed in (7, 8, 9):
        used = yaml.safe_load((runs / "full" / f"seed-{seed}" / "config.yaml").read_text())
        assert used["learning_rate"] == pytest.approx(decided["best_params"]["learning_rate"])
        variant = yaml.safe_load((runs / "lora_q" / f"seed-{seed}" / "config.yaml").read_text())
        assert variant["lora_target_modules"] == ["query"]
    comparison = json.loads((Path(cfg.output_dir) / "comparison.json").read_text())
    extension = comparison["fairness"]["full"]["extension"]
    assert extension["decided_by"] == ("widened" if decided is wider else "first")
    assert comparison["tuning"]["full"]["trials_in_all"] == 6 and "lora_q" in comparison["tuning"]
    assert "widened once" in comparison["headline"][0] and "6 trials in all" in comparison["headline"][0]
    report = (Path(cfg.output_dir) / "report.md").read_text()
    assert "Fairness checks" in report and "full (widened at its edges)" in report and "lora_q - full" in report
    pre = json.loads((Path(cfg.output_dir) / "preregistration.json").read_text())
    assert pre["tune_extend"] and pre["method_variants"]["lora_q"]["lora_target_modules"] == ["query"]
    assert set(pre["search_spaces"]) == {"full", "lora_q"}
    capsys.readouterr()
    # the same command resumes: both searches are complete, nothing is tuned or trained again
    assert main(["compare", "--config", str(path)]) == 0
    assert json.loads((out / "full" / "extended" / "summary.json").read_text())["trials"] == 3
    assert "training on" not in capsys.readouterr().err
    # the variant exports as a method of its own, in a process that never saw the config: its run's config.yaml
    # declares it
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "finetune_compare.cli", "export", "--run", cfg.output_dir,
                           "--method", "lora_q", "--output", str(tmp_path / "export")],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "",
                                                               "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stderr[-2000:]
    card = (tmp_path / "export" / "README.md").read_text()
    assert "lora_q" in card and "query" in card
