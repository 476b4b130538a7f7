"""Optuna search on tiny models: outputs, resume, pruning, failures, shared journal storage."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from finetune_compare import ConfigError
from finetune_compare.experiments.study.ownership import claim_output_dir
from finetune_compare.experiments.search.optimize import create_study, run_optimization, search_space_for

from ..conftest import tiny_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# small, fast spaces: one epoch, batch 8
FAST = {"common": {"batch_size": {"type": "categorical", "choices": [8]},
                   "num_epochs": {"type": "categorical", "choices": [1]}}}


def cfg_for(model, tmp_path, **kw):
    kw.setdefault("search_space", FAST)
    return tiny_config(model, tmp_path, **kw)


def test_three_trials_per_method_write_outputs(tiny_bert, tmp_path):
    cfg = cfg_for(tiny_bert, tmp_path)
    summaries = run_optimization(cfg, ["full", "lora"], n_trials=3)
    empty = [d for d in Path(cfg.output_dir).rglob("*") if d.is_dir() and not any(d.iterdir())]
    assert not empty, empty  # no trials/trial-N or checkpoints/ husks
    out = Path(cfg.output_dir) / "optimize"
    for method in ("full", "lora"):
        s = summaries[method]
        assert s["trials"] == 3 and s["states"]["COMPLETE"] + s["states"]["PRUNED"] == 3
        assert (out / method / "trials.csv").read_text().count("\n") == 4  # header + 3 trials
        best = yaml.safe_load((out / method / "best_params.yaml").read_text())
        assert set(best) >= ({"learning_rate", "weight_decay"} if method == "full"
                             else {"lora_learning_rate", "lora_r", "lora_alpha", "lora_target_modules"})
        assert (out / method / "optimization_history.png").is_file()
        assert s["pruning"]["steps_budget_without_pruning"] >= s["pruning"]["steps_run"] > 0
        # how much tuning it needed: the expected best of n complete trials, rising to at most the best one
        ev = s["expected_validation"]
        assert ev["complete_trials"] == s["states"]["COMPLETE"] and ev["pruned_left_out"] == s["states"]["PRUNED"]
        if ev["curve"]:
            assert ev["curve"][-1]["mean"] <= s["best_value"] + 1e-12 and ev["at"][-1]["n"] == ev["complete_trials"]
    assert (out / "expected_validation.png").is_file()
    if "lora_alpha" in summaries["lora"]["best_params"]:
        bp = summaries["lora"]["best_params"]
        assert bp["lora_alpha"] % bp["lora_r"] == 0
    tuned = yaml.safe_load((out / "tuned.yaml").read_text())
    assert set(tuned["method_overrides"]) == {"full", "lora"}
    # the tuned file feeds a comparison: each method runs with its own tuned values
    from finetune_compare.config import load_config

    merged = load_config([str(out / "tuned.yaml")], ["data_source=embedded"])
    assert merged.for_method("lora").lora_r == summaries["lora"]["best_params"]["lora_r"]
    assert merged.for_method("full").learning_rate == summaries["full"]["best_params"]["learning_rate"]


def test_stopped_study_resumes_to_requested_count(tiny_bert, tmp_path):
    cfg = cfg_for(tiny_bert, tmp_path)
    run_optimization(cfg, ["full"], n_trials=2)
    summary = run_optimization(cfg, ["full"], n_trials=3)["full"]
    assert summary["trials"] == 3
    assert run_optimization(cfg, ["full"], n_trials=3)["full"]["trials"] == 3  # nothing left to do


def test_pruner_stops_a_bad_trial(tiny_bert, tmp_path):
    space = {"common": FAST["common"], "full": {"learning_rate": {"type": "categorical", "choices": [1e-12]},
                                                "weight_decay": None, "warmup_ratio": None}}
    cfg = cfg_for(tiny_bert, tmp_path, search_space=space, evaluations_per_epoch=4)
    claim_output_dir(cfg, cfg.output_dir)  # as `--trials 0` does: claim, then create the study
    study = create_study(cfg.search, cfg.seed, "full", Path(cfg.output_dir))
    dists = {"learning_rate": optuna.distributions.CategoricalDistribution([1e-12]),
             "batch_size": optuna.distributions.CategoricalDistribution([8]),
             "num_epochs": optuna.distributions.CategoricalDistribution([1])}
    for _ in range(3):  # earlier trials that scored far better at every step
        study.add_trial(optuna.trial.create_trial(
            params={"learning_rate": 1e-12, "batch_size": 8, "num_epochs": 1}, distributions=dists, value=0.99,
            intermediate_values={step: 0.99 for step in range(1, 50)}))
    summary = run_optimization(cfg, ["full"], n_trials=4)["full"]
    assert summary["states"]["PRUNED"] == 1
    pruned = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.PRUNED][0]
    assert pruned.user_attrs["steps_run"] < pruned.user_attrs["steps_budget"]
    assert summary["pruning"]["saved_fraction"] > 0


def test_failing_trial_is_recorded_and_study_continues(tiny_bert, tmp_path):
    space = {"common": FAST["common"],
             "lora": {"lora_target_modules": {"type": "categorical", "choices": [["q_proj"]]}}}
    cfg = cfg_for(tiny_bert, tmp_path, search_space=space)
    summary = run_optimization(cfg, ["lora"], n_trials=2)["lora"]
    assert summary["states"]["FAIL"] == 2  # the second trial ran after the first failed
    assert "'q_proj' matches no layer" in summary["failures"][0]["reason"]
    assert summary["best_params"] is None


def test_bad_search_space_fails_before_training(tiny_bert, tmp_path):
    with pytest.raises(ConfigError, match="search_space.full.learning_rat: not a config key"):
        search_space_for(cfg_for(tiny_bert, tmp_path, search_space={"full": {"learning_rat": {"type": "float"}}}),
                         "full")
    with pytest.raises(ConfigError, match="needs numbers low < high"):
        search_space_for(cfg_for(tiny_bert, tmp_path, search_space={
            "full": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-5}}}), "full")


def test_two_workers_share_a_journal_study(tiny_bert, tmp_path):
    journal = tmp_path / "study.journal"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**tiny_config(tiny_bert, tmp_path).to_dict(), "search_space": FAST}))
    base = [sys.executable, str(ROOT / "main.py"), "--mode", "optimize", "--method", "full", "--config",
            str(config), "--storage", f"journal:{journal}", "--log-level", "WARNING"]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # create the study first: parallel first creation is where storages race
    subprocess.run(base + ["--trials", "0"], check=True, env=env, capture_output=True, timeout=300)
    workers = [subprocess.Popen(base + ["--trials", "4", "--output-dir", str(tmp_path / f"w{i}"),
                                        "--set", "num_threads=1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err.decode()[-2000:]
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="finetune-compare-full", storage=JournalStorage(JournalFileBackend(str(journal))))
    numbers = [t.number for t in study.get_trials()]
    assert len(numbers) == len(set(numbers)) and 4 <= len(numbers) <= 5  # each worker checks the cap before a trial


def test_memory_does_not_grow_over_trials(tiny_bert, tmp_path):
    cfg = cfg_for(tiny_bert, tmp_path, hpo_pruner="none")
    summary = run_optimization(cfg, ["full"], n_trials=10)["full"]
    assert summary["pruning"]["saved_fraction"] == 0.0  # nothing pruned: early stopping is not a pruning saving
    claim_output_dir(cfg, cfg.output_dir)  # as `--trials 0` does: claim, then create the study
    study = create_study(cfg.search, cfg.seed, "full", Path(cfg.output_dir))
    rss = [t.user_attrs["rss_mb_after"] for t in sorted(study.get_trials(), key=lambda t: t.number)]
    assert len(rss) == 10
    # after warm-up (allocator pools, caches), each trial must give back what it took
    assert rss[-1] - rss[2] < 40, rss


def test_interrupted_trials_are_not_counted_and_orphans_are_failed(tiny_bert, tmp_path):
    """Ctrl-C (Optuna marks FAIL) and kill -9 (left RUNNING) are accounted the same: interrupted, not counted."""
    import socket

    from finetune_compare.experiments.search.studies import INTERRUPTED

    cfg = cfg_for(tiny_bert, tmp_path, hpo_pruner="none")
    claim_output_dir(cfg, cfg.output_dir)
    study = create_study(cfg.search, cfg.seed, "full", Path(cfg.output_dir))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = study.ask()  # a trial whose process was killed -9: RUNNING forever
    orphan.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")
    ctrl_c = study.ask()  # what Optuna leaves after Ctrl-C: FAIL, with our reason
    ctrl_c.set_user_attr("fail_reason", INTERRUPTED)
    study.tell(ctrl_c, state=optuna.trial.TrialState.FAIL)
    summary = run_optimization(cfg, ["full"], n_trials=2)["full"]
    assert summary["states"]["INTERRUPTED"] == 2 and summary["states"]["RUNNING"] == 0
    assert summary["states"]["COMPLETE"] == 2  # both interrupted trials were made up for
    assert summary["failures"] == []


def test_a_set_value_replaced_by_the_search_space_is_warned_about(tiny_bert, tmp_path):
    from finetune_compare.experiments.search.optimize import warn_searched_settings

    cfg = cfg_for(tiny_bert, tmp_path, num_epochs=1)
    spaces = {m: search_space_for(cfg, m) for m in ("full", "lora")}
    warned = warn_searched_settings(cfg, spaces)
    assert any(w.startswith("full: num_epochs=1 is searched by Optuna and replaced in every trial") for w in warned)
    kept = cfg.replace(search_space={"full": {"num_epochs": None}, "lora": {"num_epochs": None}})
    assert not any("num_epochs" in w for w in warn_searched_settings(kept, {m: search_space_for(kept, m)
                                                                            for m in ("full", "lora")}))


def test_optimize_ends_with_the_compare_command_for_the_config_it_used(tiny_bert, tmp_path, capsys):
    from finetune_compare.cli import main

    cfg = tmp_path / "search.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config(tiny_bert, tmp_path).to_dict(), "search_space": FAST}))
    assert main(["optimize", "--config", str(cfg), "--method", "full", "--trials", "1", "--set", "seed=7"]) == 0
    out = capsys.readouterr().out
    tuned = Path(tiny_config(tiny_bert, tmp_path).output_dir) / "optimize" / "tuned.yaml"
    assert f"tuned vs tuned: finetune-compare compare --config {cfg} --config {tuned} --set seed=7" in out
    assert "BASE.yaml" not in out
    # how much tuning it needed, quoted at 1 and N trials (here both 1)
    assert "How much tuning each method needed" in out
    assert "full: expected best validation macro_f1 after n trials (± SD) 1: " in out
