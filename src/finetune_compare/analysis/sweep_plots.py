"""Plots of a sweep (PNG under SWEEP_DIR/plots/): every quantity against the first swept key.

With a second key, each of its values gets its own line style; methods keep the comparison
report's colours. A numeric key spanning 10x or more gets a log axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.sources import display_name
from ..layout import Layout
from .plots import method_colors, save_figure, plt

LINESTYLES = ["-", "--", ":", "-."]


def _x_axis(summary: dict):
    """Positions of the first key's values, and whether the axis is numeric and logarithmic."""
    key = summary["keys"][0]
    values = list(dict.fromkeys(_hashable(p["values"][key]) for p in summary["points"]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        log = min(values) > 0 and max(values) / min(values) >= 10
        return {v: float(v) for v in values}, log
    return {v: float(i) for i, v in enumerate(values)}, False


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def _series(summary: dict):
    """(label suffix, line style, points in first-key order) per value of the second key."""
    keys = summary["keys"]
    if len(keys) == 1:
        return [("", "-", summary["points"])]
    groups: dict = {}
    for p in summary["points"]:
        groups.setdefault(_hashable(p["values"][keys[1]]), []).append(p)
    return [(f", {keys[1]}={k}", LINESTYLES[i % len(LINESTYLES)], pts) for i, (k, pts) in enumerate(groups.items())]


def _setup_x(ax, summary: dict, xs: dict, log: bool) -> None:
    key = summary["keys"][0]
    if log:
        ax.set_xscale("log")
    ax.set_xticks(list(xs.values()), [str(v) for v in xs])
    ax.minorticks_off()
    ax.set_xlabel(key.replace("_", " "))
    ax.grid(alpha=0.3)


def _errorbar(ax, x, stats, color, style, label, shift=lambda v: v):
    ok = [(xi, s) for xi, s in zip(x, stats) if s]
    if not ok:
        return
    xv = shift(np.array([xi for xi, _ in ok]))
    mean = np.array([s["mean"] for _, s in ok])
    lo = np.array([s["mean"] - s["ci_low"] if s.get("ci_low") is not None else 0 for _, s in ok])
    hi = np.array([s["ci_high"] - s["mean"] if s.get("ci_high") is not None else 0 for _, s in ok])
    ax.errorbar(xv, mean, yerr=[lo, hi], color=color, ls=style, marker="o", capsize=3, label=label)


def _offset(i: int, n: int, log: bool, xs: dict):
    """Nudge methods apart (3% of the axis) so their intervals do not hide each other."""
    step = (i - (n - 1) / 2) * 0.03
    if log:
        span = np.log10(max(xs.values()) / min(xs.values()))
        return lambda v: v * 10 ** (step * span)
    span = (max(xs.values()) - min(xs.values())) or 1.0
    return lambda v: v + step * span


def primary_plot(summary: dict, out: Path) -> Path:
    xs, log = _x_axis(summary)
    key, metric, methods = summary["keys"][0], summary["primary_metric"], summary["methods"]
    colors = method_colors(methods)
    fig, (ax_m, ax_d) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
    for suffix, style, pts in _series(summary):
        x = [xs[_hashable(p["values"][key])] for p in pts]
        for i, m in enumerate(methods):
            _errorbar(ax_m, x, [p["methods"][m]["primary"] for p in pts], colors[m], style, m + suffix,
                      _offset(i, len(methods), log, xs))
        for name in summary["comparisons"]:
            stats = []
            for p in pts:
                c = p["comparisons"].get(name)
                stats.append({"mean": c["diff_mean"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]} if c else None)
            first = next((p["comparisons"][name] for p in pts if name in p["comparisons"]), None)
            if first:
                _errorbar(ax_d, x, stats, colors.get(first["a"], "black"), style,
                          f"{first['a']} - {first['b']}{suffix}")
    margin = summary.get("equivalence_margin")
    ax_d.axhline(0, color="grey", lw=1)
    if margin:
        ax_d.axhspan(-margin, margin, color="grey", alpha=0.15, label=f"equivalence margin ±{margin:g}")
    for ax in (ax_m, ax_d):
        _setup_x(ax, summary, xs, log)
        ax.legend(fontsize=8)
    ax_m.set(title=f"Test {metric.replace('_', ' ')}: mean, 95% CI over seeds", ylabel=metric.replace("_", " "))
    ax_d.set(title="Paired difference: mean, 95% CI (seed + test-set noise)", ylabel="difference")
    return save_figure(fig, out)


def sources_plot(summary: dict, out: Path) -> Path:
    xs, log = _x_axis(summary)
    key, metric, methods, sources = summary["keys"][0], summary["primary_metric"], summary["methods"], summary["sources"]
    colors = method_colors(methods)
    fig, axes = plt.subplots(1, max(1, len(sources)), figsize=(4.5 * max(1, len(sources)), 4), squeeze=False,
                             constrained_layout=True, sharey=True)
    for ax, src in zip(axes[0], sources):
        for suffix, style, pts in _series(summary):
            x = [xs[_hashable(p["values"][key])] for p in pts]
            for i, m in enumerate(methods):
                _errorbar(ax, x, [p["methods"][m]["per_source"].get(src) for p in pts], colors[m], style, m + suffix,
                          _offset(i, len(methods), log, xs))
        _setup_x(ax, summary, xs, log)
        ax.set(title=display_name(src), ylabel=metric.replace("_", " "))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Test {metric.replace('_', ' ')} per source: mean, 95% CI over seeds")
    return save_figure(fig, out)


def cost_plot(summary: dict, out: Path) -> Path:
    xs, log = _x_axis(summary)
    key, methods = summary["keys"][0], summary["methods"]
    colors = method_colors(methods)
    cuda = any(p["methods"][m].get("peak_cuda_mb") for p in summary["points"] for m in methods)
    memory_key, memory_label = (("peak_cuda_mb", "peak CUDA memory (MB)") if cuda else
                                ("peak_rss_above_baseline_mb", "training memory: peak RSS above each run's start (MB)"))
    fig, (ax_t, ax_mem) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for suffix, style, pts in _series(summary):
        x = [xs[_hashable(p["values"][key])] for p in pts]
        for m in methods:
            seconds = [p["methods"][m]["train_seconds"] for p in pts]
            ax_t.plot(x, seconds, color=colors[m], ls=style, marker="o", label=m + suffix)
            for xi, yi, p in zip(x, seconds, pts):  # the budget beside every time: a ratio means nothing without it
                epochs, steps = p["methods"][m].get("epochs_run"), p["methods"][m].get("steps")
                if epochs is not None:
                    ax_t.annotate(f"{epochs:.3g} ep" + (f", {steps:,.0f} steps" if steps else ""), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7,
                                  color=colors[m])
            mem = [p["methods"][m].get(memory_key) for p in pts]
            ax_mem.plot(x, [np.nan if v is None else v for v in mem], color=colors[m], ls=style, marker="o",
                        label=m + suffix)
    for ax in (ax_t, ax_mem):
        _setup_x(ax, summary, xs, log)
        ax.legend(fontsize=8)
    ax_t.set(title="Training time per run (mean over seeds; labels: epochs run)", ylabel="seconds")
    ax_mem.set(title=memory_label.capitalize() + " (mean over seeds)", ylabel="MB")
    return save_figure(fig, out)


def make_sweep_plots(sweep_dir: Path, summary: dict) -> dict[str, Path]:
    layout = Layout(sweep_dir)
    out = {"sweep_primary": primary_plot(summary, layout.plot("sweep_primary")),
           "sweep_cost": cost_plot(summary, layout.plot("sweep_cost"))}
    if summary["sources"]:
        out["sweep_sources"] = sources_plot(summary, layout.plot("sweep_sources"))
    return out
