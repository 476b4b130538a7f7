"""Does an efficiency setting cost quality? Paired runs of two arms, judged by the comparison's own statistics.

Used by `bf16_base_quality.py` (LoRA's frozen base in bf16 vs fp32) and `attention_quality.py` (eager vs SDPA
attention in CPU training). Pair k of both arms shares its data draw, batch order and initialisation, so the
only difference is the setting. The verdict uses `analysis.statistics` exactly as `compare` does (paired
t-test, interval over seed and test-set noise, TOST against a ±0.01 margin).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = ROOT / "benchmarks" / "results"


@dataclass
class Arm:
    label: str  # as the verdict names it, e.g. "bf16 base"
    key: str  # short name for folders and JSON keys
    config_changes: dict
    setting: Callable[[], AbstractContextManager]  # entered around the arm's runs
    recorded_as: str  # the metrics.json `params` field that must hold `key` if a run used this arm's setting


def run_pairs(title: str, name: str, new: Arm, old: Arm, methods: list[str], seeds: int, config: str,
              output_dir: str, results_dir: Path = RESULTS) -> dict:
    """Train every method under both arms for `seeds` paired seeds; write <results_dir>/<name>.{json,md}."""
    from finetune_compare.analysis.test_evidence import paired_runs_evidence
    from finetune_compare.analysis.statistics import paired
    from finetune_compare.config import load_config
    from finetune_compare.experiments.execution.context import context_for_pair, prepare_context
    from finetune_compare.experiments.execution.run import run_method
    from finetune_compare.experiments.study.study_plan import run_dir_for, study_plan
    from finetune_compare.logging_setup import setup_logging

    setup_logging("INFO")
    base = load_config(config).replace(tracking_mlflow=False, tracking_wandb=False, methods=methods)
    result: dict = {"config": config, "methods": {}}
    for method in methods:
        scores: dict = {old.key: {}, new.key: {}}
        seconds: dict = {old.key: [], new.key: []}
        run_dirs: dict = {new.key: {}, old.key: {}}  # new first: the evidence is new minus old
        for arm in (old, new):
            cfg = base.replace(output_dir=f"{output_dir}/{arm.key}", **arm.config_changes)
            ctx = prepare_context(cfg, methods=[method])
            with arm.setting():
                for pair in study_plan(cfg.replace(num_runs=seeds), methods=[method]).pairs():
                    seed = pair.seed
                    start = time.perf_counter()
                    metrics = run_method(context_for_pair(ctx, pair), method, seed)
                    if metrics.params.get(arm.recorded_as) != arm.key:
                        raise SystemExit(f"{method} seed {seed} did not run with '{arm.label}': {metrics.params}")
                    seconds[arm.key].append(metrics.timing["train_seconds"])
                    scores[arm.key][seed] = metrics.test["macro_f1"]
                    run_dirs[arm.key][seed] = run_dir_for(Path(cfg.output_dir), method, seed)
                    print(f"{method} {arm.key} seed {seed}: macro-F1 {scores[arm.key][seed]:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
        p = paired(scores[new.key], scores[old.key])
        test_level = paired_runs_evidence(run_dirs, "macro_f1", seed=0)
        if test_level is None:
            raise SystemExit(f"{method}: the two arms' runs lack predictions or were tested on different examples")
        result["methods"][method] = {
            "seeds": p["seeds"], "macro_f1": scores, "paired": p, "test_level": test_level,
            "train_seconds_mean": {k: float(np.mean(v)) for k, v in seconds.items()}}
    write_results(title, name, result, new, old, results_dir)
    return result


def write_results(title: str, name: str, result: dict, new: Arm, old: Arm, results_dir: Path) -> None:
    """The verdicts (from the stored pairs, so a rewrite after a statistics change needs no new runs) and files."""
    from finetune_compare.analysis.verdict import decide

    for r in result["methods"].values():
        r["verdict"] = decide(new.label, old.label, "macro_f1", r["paired"], r["test_level"], 0.01)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [f"# {title} (paired seeds)", "", f"Config: `{Path(result['config']).name}`; each pair shares data draw, batch order "
             "and initialisation."]
    for method, r in result["methods"].items():
        lines += ["", f"## {method}", "", f"| seed | {old.label} macro-F1 | {new.label} macro-F1 | difference |",
                  "|---:|---:|---:|---:|"]
        for s, d in zip(r["seeds"], r["paired"]["diffs"]):
            lines.append(f"| {s} | {r['macro_f1'][old.key][s]:.4f} | {r['macro_f1'][new.key][s]:.4f} | {d:+.4f} |")
        t = r["train_seconds_mean"]
        lines += ["", f"Verdict: {r['verdict']['text']}", "",
                  f"Mean training time: {old.label} {t[old.key]:.1f} s, {new.label} {t[new.key]:.1f} s."]
    (results_dir / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def rewrite(title: str, name: str, new: Arm, old: Arm, results_dir: Path = RESULTS) -> None:
    """Rewrite <results_dir>/<name>.{json,md} from the stored runs' scores (`--rewrite`)."""
    result = json.loads((results_dir / f"{name}.json").read_text())
    for r in result["methods"].values():  # JSON made the seeds strings
        r["macro_f1"] = {arm: {int(s): v for s, v in by_seed.items()} for arm, by_seed in r["macro_f1"].items()}
    write_results(title, name, result, new, old, results_dir)
