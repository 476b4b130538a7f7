"""Plots for the comparison (PNG under OUTPUT_DIR/plots/), drawn from the run files only.

Okabe-Ito colours (readable with the common colour-vision deficiencies), titles, axis
labels with units, legends, and `constrained_layout` so labels do not overlap.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402

from ..data.sources import display_name  # noqa: E402
from ..layout import BASE_METHOD, HISTORY, METRICS, Layout  # noqa: E402
from .run_files import read_history, read_record  # noqa: E402
from ..budgets import declared_budget  # noqa: E402
from ..metric_names import DEFAULT_METRIC, keys_by_name  # noqa: E402

log = logging.getLogger(__name__)

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
DPI = 110


def method_colors(methods: list[str]) -> dict[str, str]:
    return {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(methods)}


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")  # never leave a half-written image
    fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    tmp.replace(path)
    return path


def _metrics_files(output_dir: Path, method: str) -> list[Path]:
    return [d / METRICS for d in Layout(output_dir).seed_dirs(method) if (d / METRICS).is_file()]


def _mean_band(series: list[list[tuple[int, float]]]):
    """Mean and std over seeds at each step that any seed logged (seeds may stop early)."""
    by_step: dict[int, list[float]] = {}
    for run in series:
        for step, value in run:
            by_step.setdefault(step, []).append(value)
    steps = np.array(sorted(by_step))
    mean = np.array([np.mean(by_step[s]) for s in steps])
    std = np.array([np.std(by_step[s]) for s in steps])
    return steps, mean, std


def learning_curves(output_dir: Path, methods: list[str], colors: dict, out: Path) -> Path:
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for m in methods:
        loss_runs, f1_runs = [], []
        for hist_path in [d / HISTORY for d in Layout(output_dir).seed_dirs(m) if (d / HISTORY).is_file()]:
            h = read_history(hist_path)
            loss_runs.append([(e["step"], e["loss"]) for e in h["train"]])
            f1_runs.append([(e["step"], e["macro_f1"]) for e in h["eval"]])
        n = len(loss_runs)
        for ax, runs in ((ax_loss, loss_runs), (ax_f1, f1_runs)):
            if not any(runs):
                continue
            steps, mean, std = _mean_band(runs)
            ax.plot(steps, mean, color=colors[m], label=f"{m} (mean of {n} seed{'s' if n != 1 else ''})",
                    marker="o" if ax is ax_f1 else None, markersize=3)
            if n > 1:
                ax.fill_between(steps, mean - std, mean + std, color=colors[m], alpha=0.2, linewidth=0)
    ax_loss.set(title="Training loss", xlabel="optimizer step", ylabel="cross-entropy loss (nats)")
    ax_f1.set(title="Validation macro-F1", xlabel="optimizer step", ylabel="macro-F1")
    for ax in (ax_loss, ax_f1):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("Learning curves (band: ±1 std over seeds)")
    return save_figure(fig, out)


def confusion_matrices(output_dir: Path, methods: list[str], out: Path, include_base: bool) -> Path:
    panels = (["base"] if include_base else []) + methods
    fig, axes = plt.subplots(1, len(panels), figsize=(3.9 * len(panels), 3.8), constrained_layout=True,
                             squeeze=False)
    for ax, m in zip(axes[0], panels):
        paths = [Layout(output_dir).base_run / METRICS] if m == BASE_METHOD else _metrics_files(output_dir, m)
        runs = [read_record(p) for p in paths]
        counts = sum(np.array(r.test["confusion_matrix"]) for r in runs)
        names = runs[0].labels
        rows = counts.sum(axis=1, keepdims=True)
        norm = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        crowded = len(names) > 5  # many classes: rates only, so the cells stay readable
        for i in range(len(names)):
            for j in range(len(names)):
                text = f"{norm[i, j]:.2f}" if crowded else f"{norm[i, j]:.2f}\n({int(counts[i, j])})"
                ax.text(j, i, text, ha="center", va="center", fontsize=6 if crowded else 8,
                        color="white" if norm[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 20, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set(xlabel="predicted", ylabel="true",
               title=f"{m} ({len(paths)} run{'s' if len(paths) != 1 else ''})")
    fig.suptitle("Test confusion matrices, row-normalised (counts summed over seeds)")
    return save_figure(fig, out)


def _tick_label(name: str, known: dict) -> str:
    """A score's tick: 'macro f1' over its source ('SST-5') or its domain ('out of domain') on a second line."""
    key = known.get(name)
    if key is None or key.group not in ("per_source", "domain"):
        return name.replace("_", " ")
    part = display_name(key.part) if key.group == "per_source" else key.part.replace("_", " ")
    return f"{key.metric.replace('_', ' ')}\n{part}"


def metric_comparison(comparison: dict, colors: dict, out: Path) -> Path:
    groups = comparison["metric_groups"]
    methods = comparison["methods"]
    widths = [max(1, len(keys)) for keys in groups.values()] + [2.5]
    fig, axes = plt.subplots(1, len(widths), figsize=(18 + 3 * (len(widths) - 4), 4.4), constrained_layout=True,
                             gridspec_kw={"width_ratios": widths})
    held = ", ".join(display_name(s) for s in comparison.get("held_out_sources") or [])
    titles = {"overall": "Overall", "per_class": "F1 per class", "per_source": "Per source",
              "domain": f"In domain / out of domain\n(held out: {held})"}
    paired_differences(comparison, colors, axes[-1])
    known = keys_by_name(comparison)
    for ax, (group, keys) in zip(axes, groups.items()):
        if not keys:  # one source: the overall panel already shows it
            ax.axis("off")
            continue
        x = np.arange(len(keys))
        width = 0.8 / max(1, len(methods))
        for i, m in enumerate(methods):
            stats = [comparison["per_method"][m][k] for k in keys]
            means = np.array([s["mean"] if s["mean"] is not None else np.nan for s in stats])
            lo = np.array([s["mean"] - s["ci_low"] if s["ci_low"] is not None else 0 for s in stats])
            hi = np.array([s["ci_high"] - s["mean"] if s["ci_high"] is not None else 0 for s in stats])
            has_ci = any(s["ci_low"] is not None for s in stats)  # one run: no bars that suggest an interval
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=[lo, hi] if has_ci else None,
                   capsize=3, color=colors[m], label=m)
        if comparison.get("base"):
            base_vals = [comparison["base"]["test"].get(k, np.nan) for k in keys]
            ax.scatter(x, base_vals, marker="_", s=400, color="black", zorder=3, label="base (untrained)")
        labels = [_tick_label(k, known) for k in keys]
        ax.set_xticks(x, labels, fontsize=8, rotation=0 if group != "overall" else 15)
        ax.set(title=titles[group], ylabel="score (0-1)", ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)  # never over bars
    n = min(comparison["n_runs"].values()) if comparison["n_runs"] else 0
    fig.suptitle("Test metrics: mean over seeds" + (", error bars = 95% t-interval of the mean" if n > 1 else
                                                     " (one run: no error bars)"))
    return save_figure(fig, out)


def paired_differences(comparison: dict, colors: dict, ax) -> None:
    """Primary metric: each seed's paired difference (dots) and the verdict's interval (seed + test noise)."""
    metric = comparison.get("primary_metric", DEFAULT_METRIC)
    for i, c in enumerate(comparison["comparisons"].values()):
        p, v = c["primary"], c["primary"]["verdict"]
        ax.scatter(np.full(len(p["diffs"]), i), p["diffs"], color=colors.get(c["a"], "C0"), zorder=3,
                   label="per-seed difference" if i == 0 else None)
        if v["ci_low"] is not None:
            ax.errorbar([i + 0.15], [p["diff_mean"]], yerr=[[p["diff_mean"] - v["ci_low"]], [v["ci_high"] - p["diff_mean"]]],
                        fmt="D", color="black", capsize=4, label="mean, 95% CI (seed + test noise)" if i == 0 else None)
    ax.axhline(0, color="grey", lw=1)
    margin = comparison.get("equivalence_margin")
    if margin:  # what "equivalent" would need: the 90% interval inside this band
        ax.axhspan(-margin, margin, color="grey", alpha=0.15, label=f"equivalence margin ±{margin:g}")
    keys = list(comparison["comparisons"].values())
    ax.set_xticks(range(len(keys)), [f"{c['a']} - {c['b']}" for c in keys], fontsize=8)
    ax.set_xlim(-0.6, max(len(keys), 1) - 0.4)
    ax.set(title=f"Paired differences, {metric.replace('_', ' ')}", ylabel="difference")
    if keys:
        ax.margins(y=0.35)  # headroom: the legend sits above the interval, not on it
        ax.legend(fontsize=7, loc="upper center")


def budget_label(sections: list[dict | None]) -> str:
    """A method's training budget for a legend, from its runs' training sections: the declared one, or the epochs
    and steps its runs took."""
    training = [t or {} for t in sections]
    declared = declared_budget(training[0].get("budget")) if training else None
    steps = [t["steps"] for t in training if t.get("steps") is not None]
    ran = f"{sum(steps) / len(steps):,.0f} steps" if steps else "? steps"
    if declared:
        return f"budget {declared}, ran {ran}"
    epochs = [t["epochs_run"] for t in training if t.get("epochs_run") is not None]
    return f"{sum(epochs) / len(epochs):.3g} epochs, {ran}" if epochs else ran


def efficiency_plot(output_dir: Path, methods: list[str], colors: dict, out: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    specs = [
        ("trainable parameters", lambda r: r.params["trainable"], True),
        ("training time (s)", lambda r: r.timing["train_seconds"], False),
        ("peak memory (MB)", lambda r: r.memory["peak_cuda_mb"] or r.memory["peak_rss_mb"], False),
    ]
    for ax, (label, getter, log_x) in zip(axes, specs):
        for m in methods:
            rows = [read_record(p) for p in _metrics_files(output_dir, m)]
            ax.scatter([getter(r) for r in rows], [r.test["macro_f1"] for r in rows], color=colors[m],
                       label=f"{m} ({budget_label([r.training for r in rows])})", s=40, edgecolor="black", linewidth=0.5)
        if log_x:  # parameters span orders of magnitude: a log axis, and the title says so
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # crowded minor labels overlap
            ax.margins(x=0.15)
            title = f"Quality vs {label} (log axis)"
        else:  # from zero: an auto-zoomed axis made a 3% memory difference look large
            ax.set_xlim(0, max(ax.get_xlim()[1], 1) * 1.05)
            title = f"Quality vs {label.split(' (')[0]} (axis from 0)"
        ax.set_ylim(0, 1)
        ax.set(xlabel=label, ylabel="test macro-F1 (axis from 0)", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Efficiency: one point per run (up and to the left is better)")
    return save_figure(fig, out)


def error_rates_plot(error_analysis: dict, methods: list[str], colors: dict, out: Path) -> Path:
    sources = error_analysis["sources"]
    fig, ax = plt.subplots(figsize=(8, 4), constrained_layout=True)
    x = np.arange(len(sources))
    bars = methods + (["disagreement"] if error_analysis.get("disagreement_rate") else [])
    width = 0.8 / len(bars)
    for i, m in enumerate(bars):
        if m == "disagreement":
            vals = [error_analysis["disagreement_rate"].get(s, 0) for s in sources]
            color, label = "#999999", f"{' vs '.join(error_analysis['pair'])} disagree"
        else:
            vals = [error_analysis["error_rate"][m].get(s, 0) for s in sources]
            color, label = colors[m], f"{m} error rate"
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, vals, width, color=color, label=label)
    ax.set_xticks(x, [display_name(s) for s in sources])
    ax.set(ylabel="share of test examples", title=f"Errors and disagreements per source (seed {error_analysis['seed']})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def make_plots(output_dir: Path, comparison: dict, errors: dict) -> dict[str, Path]:
    output_dir = Path(output_dir)
    layout = Layout(output_dir)
    methods = comparison["methods"]
    colors = method_colors(methods)
    made = {
        "learning_curves": learning_curves(output_dir, methods, colors, layout.plot("learning_curves")),
        "confusion_matrices": confusion_matrices(output_dir, methods, layout.plot("confusion_matrices"),
                                                 comparison.get("base") is not None),
        "metric_comparison": metric_comparison(comparison, colors, layout.plot("metric_comparison")),
        "efficiency": efficiency_plot(output_dir, methods, colors, layout.plot("efficiency")),
    }
    if errors:
        made["errors"] = error_rates_plot(errors, methods, colors, layout.plot("errors"))
    return made
