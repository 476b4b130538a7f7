"""Compare methods over several seeds, with paired runs.

Run k of every method uses seed `config.seed + k`, the same data split and the same
batch order. Runs are interleaved (seed-major), so an interrupted comparison has
complete pairs, and finished runs are skipped when the command is repeated.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import Config
from ..utils.io import write_json
from .run import BASE_METHOD, RunContext, evaluate_base_model, prepare_context, run_method

log = logging.getLogger(__name__)

TABLE_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall")


def run_seeds(config: Config) -> list[int]:
    return [config.seed + k for k in range(config.num_runs)]


def summarise_runs(runs: list[dict]) -> dict:
    """Mean and standard deviation of the headline numbers per method."""
    out: dict = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        rows = [r for r in runs if r["method"] == method]
        entry = {"n_runs": len(rows)}
        for m in TABLE_METRICS:
            vals = np.array([r["test"][m] for r in rows], dtype=float)
            entry[m] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
        for s in rows[0]["test"].get("per_source", {}):
            vals = np.array([r["test"]["per_source"][s]["macro_f1"] for r in rows], dtype=float)
            entry[f"macro_f1_{s}"] = {"mean": float(vals.mean()),
                                      "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
        entry["trainable_params"] = rows[0]["params"]["trainable"]
        entry["total_params"] = rows[0]["params"]["total"]
        secs = [r["timing"]["train_seconds"] for r in rows if "train_seconds" in r["timing"]]
        entry["train_seconds"] = float(np.mean(secs)) if secs else 0.0
        entry["peak_rss_mb"] = float(np.mean([r["memory"]["peak_rss_mb"] for r in rows]))
        out[method] = entry
    return out


def format_table(summary: dict) -> str:
    methods = list(summary)
    keys = list(TABLE_METRICS) + sorted(k for k in next(iter(summary.values())) if k.startswith("macro_f1_"))
    width = max(16, *(len(m) + 2 for m in methods))
    lines = [f"{'metric':<22}" + "".join(f"{m:>{width}}" for m in methods), "-" * (22 + width * len(methods))]
    for k in keys:
        cells = []
        for m in methods:
            v = summary[m].get(k)
            if v is None:
                cells.append(f"{'-':>{width}}")
            else:
                txt = f"{v['mean']:.4f}" + (f" ± {v['std']:.4f}" if summary[m]["n_runs"] > 1 else "")
                cells.append(f"{txt:>{width}}")
        lines.append(f"{k:<22}" + "".join(cells))
    extra = [("trainable params", lambda e: f"{e['trainable_params']:,}"),
             ("train seconds", lambda e: f"{e['train_seconds']:.1f}" if e["train_seconds"] else "-"),
             ("peak RSS MB", lambda e: f"{e['peak_rss_mb']:.0f}"),
             ("runs", lambda e: str(e["n_runs"]))]
    for label, fmt in extra:
        lines.append(f"{label:<22}" + "".join(f"{fmt(summary[m]):>{width}}" for m in methods))
    return "\n".join(lines)


class ComparisonExperiment:
    """The seed's API: `ComparisonExperiment(config, device).run_multiple_runs(config)`."""

    def __init__(self, config: Config, device: str | None = None, output_dir: str | Path | None = None):
        if device is not None:
            config = config.replace(device=device)
        self.config = config
        self.output_dir = Path(output_dir or config.output_dir)
        self.context: RunContext | None = None

    def run_multiple_runs(self, config: Config | None = None, methods: list[str] | None = None) -> dict:
        config = config or self.config
        ctx = self.context = prepare_context(config, output_dir=self.output_dir)
        methods = methods or list(config.methods)
        runs: list[dict] = []
        base = evaluate_base_model(ctx) if config.evaluate_base_model else None
        for seed in run_seeds(config):
            for method in methods:
                runs.append(run_method(ctx, method, seed))
        summary = summarise_runs(runs)
        if base is not None:
            summary = {BASE_METHOD: summarise_runs([base])[BASE_METHOD], **summary}
        result = {"methods": methods, "seeds": run_seeds(config), "summary": summary,
                  "base": base, "runs": runs, "environment": ctx.environment}
        write_json(self.output_dir / "comparison.json", {k: v for k, v in result.items() if k != "runs"})
        return result
