"""Aggregate the run folders on disk into the comparison: statistics, efficiency, verdict.

Reads only files (`runs/<method>/seed-<seed>/metrics.json`, `runs/base/metrics.json`), so a
report can be rebuilt without retraining and a resumed comparison gives the same answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data.sources import CLASS_NAMES
from ..errors import UserError
from ..utils.io import read_json
from .statistics import MIN_RUNS_TO_CONCLUDE, compare_paired, describe

log = logging.getLogger(__name__)

REFERENCE = "full"
OVERALL = ("macro_f1", "accuracy", "macro_precision", "macro_recall")


def load_runs(output_dir: str | Path) -> tuple[dict[str, dict[int, dict]], dict | None]:
    """({method: {seed: metrics}}, base metrics or None) from complete runs on disk."""
    root = Path(output_dir) / "runs"
    if not root.is_dir():
        raise UserError(f"no results in '{output_dir}': expected {root}/<method>/seed-<seed>/metrics.json")
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(root.glob("*/seed-*/metrics.json")):
        m = read_json(path)
        runs.setdefault(m["method"], {})[int(m["seed"])] = m
    base_path = root / "base" / "metrics.json"
    base = read_json(base_path) if base_path.is_file() else None
    if not runs:
        raise UserError(f"no complete runs under {root} (a run is complete when its metrics.json exists)")
    return runs, base


def metric_groups(sources: list[str]) -> dict[str, list[str]]:
    return {
        "overall": list(OVERALL),
        "per_class": [f"f1_{c}" for c in CLASS_NAMES],
        "per_source": [f"{k}_{s}" for s in sources for k in ("macro_f1", "accuracy")],
    }


def flat_metrics(test: dict) -> dict[str, float]:
    out = {k: test[k] for k in OVERALL}
    for c in CLASS_NAMES:
        if c in test["per_class"]:
            out[f"f1_{c}"] = test["per_class"][c]["f1"]
    for s, m in test.get("per_source", {}).items():
        out[f"macro_f1_{s}"] = m["macro_f1"]
        out[f"accuracy_{s}"] = m["accuracy"]
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def efficiency(runs: dict[int, dict]) -> dict:
    rows = list(runs.values())
    first = rows[0]
    params = first["params"]
    t = [r["timing"] for r in rows]
    saved = [r["saved_model"]["bytes"] for r in rows if r.get("saved_model")]
    # without save_model, estimate what it would write: fp32 weights of the trained part
    # (the adapter + head for PEFT methods, every weight for full fine-tuning)
    estimate = 4 * (params["trainable"] if params["adapter"] else params["total"])
    return {
        "trainable_params": params["trainable"], "total_params": params["total"],
        "adapter_params": params["adapter"], "head_params": params["head"],
        "trainable_ratio": params["trainable_ratio"],
        "train_seconds": describe([x["train_seconds"] for x in t]),
        "seconds_per_epoch": _mean(x.get("seconds_per_epoch") for x in t),
        "epochs_run": _mean(r["training"]["epochs_run"] for r in rows),
        "train_samples_per_second": _mean(x["train_samples_per_second"] for x in t),
        "train_tokens_per_second": _mean(x["train_tokens_per_second"] for x in t),
        "eval_samples_per_second": _mean(x["eval_samples_per_second"] for x in t),
        "eval_tokens_per_second": _mean(x["eval_tokens_per_second"] for x in t),
        "peak_rss_mb": _mean(r["memory"]["peak_rss_mb"] for r in rows),
        "peak_cuda_mb": _mean(r["memory"].get("peak_cuda_mb") for r in rows),
        "saved_bytes": _mean(saved) if saved else estimate,
        "saved_bytes_measured": bool(saved),
    }


def headline(per_method: dict, comparisons: dict, eff: dict) -> list[str]:
    lines = []
    for key, by_metric in comparisons.items():
        cmp = by_metric["macro_f1"]
        a, b = cmp["a"], cmp["b"]
        ea, eb = eff[a], eff[b]
        cost = (f"{a} trains {ea['trainable_params']:,} parameters ({ea['trainable_ratio']:.2%} of the model) vs "
                f"{eb['trainable_params']:,}; training time {ea['train_seconds']['mean'] / eb['train_seconds']['mean']:.2f}x, "
                f"peak memory {ea['peak_rss_mb'] / eb['peak_rss_mb']:.2f}x, saved size "
                f"{ea['saved_bytes'] / eb['saved_bytes']:.3f}x of {b}'s.")
        lines.append(cmp["verdict"] + " " + cost)
    return lines


def build_comparison(output_dir: str | Path, reference: str = REFERENCE, seed: int = 0) -> dict:
    runs, base = load_runs(output_dir)
    methods = sorted(runs, key=lambda m: (m != reference, m))
    sources = sorted({s for by_seed in runs.values() for r in by_seed.values() for s in r["test"]["per_source"]})
    groups = metric_groups(sources)
    keys = [k for g in groups.values() for k in g]
    flat = {m: {s: flat_metrics(r["test"]) for s, r in by_seed.items()} for m, by_seed in runs.items()}
    per_method = {
        m: {k: describe([flat[m][s][k] for s in sorted(flat[m]) if k in flat[m][s]], seed) for k in keys}
        for m in methods
    }
    comparisons = {}
    if reference in runs:
        for m in methods:
            if m == reference:
                continue
            comparisons[f"{m}_vs_{reference}"] = {
                k: compare_paired({s: v[k] for s, v in flat[m].items() if k in v},
                                  {s: v[k] for s, v in flat[reference].items() if k in v}, m, reference, k, seed)
                for k in keys
            }
    eff = {m: efficiency(runs[m]) for m in methods}
    n_runs = {m: len(runs[m]) for m in methods}
    result = {
        "methods": methods, "reference": reference, "n_runs": n_runs, "sources": sources, "metric_groups": groups,
        "per_method": per_method, "comparisons": comparisons, "efficiency": eff,
        "base": {"test": flat_metrics(base["test"]), "params": base["params"]} if base else None,
        "headline": headline(per_method, comparisons, eff),
        "too_few_runs": any(n < MIN_RUNS_TO_CONCLUDE for n in n_runs.values()),
        "model_name": next(iter(next(iter(runs.values())).values()))["model_name"],
        "environment": next(iter(next(iter(runs.values())).values())).get("environment", {}),
    }
    return result
