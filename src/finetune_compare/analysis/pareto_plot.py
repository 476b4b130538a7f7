"""The Pareto plot: each method's score (mean over the seeds, with its 95% t-interval) against each cost, the
methods on the front filled and joined, the others hollow. Drawn from comparison.json's `pareto` only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .plots import save_figure  # noqa: E402


def pareto_plot(comparison: dict, colors: dict, out: Path) -> Path:
    fronts = comparison["pareto"]
    primary = comparison["primary_metric"]
    fig, axes = plt.subplots(1, len(fronts), figsize=(4.6 * len(fronts), 4.4), constrained_layout=True,
                             squeeze=False)
    for ax, (key, front) in zip(axes[0], fronts.items()):
        rows = front["methods"]
        for m, r in rows.items():
            err = None
            if r["ci_low"] is not None:
                err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]]
            ax.errorbar([r["cost"]], [r["mean"]], yerr=err, fmt="o", capsize=4, color=colors[m],
                        markerfacecolor=colors[m] if r["on_front"] else "white", markersize=8)
            ax.annotate(m, (r["cost"], r["mean"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
        on = sorted((r["cost"], r["mean"]) for r in rows.values() if r["on_front"])
        if len(on) > 1:
            ax.plot(*zip(*on), color="grey", linestyle="--", linewidth=1, zorder=0)
        costs = [r["cost"] for r in rows.values()]
        if key == "trainable_params" and min(costs) > 0 and max(costs) / min(costs) > 20:
            ax.set_xscale("log")
        unit = f" ({front['unit']})" if front["unit"] else ""
        ax.set(xlabel=front["label"] + unit, ylabel=f"{primary} (test, mean over seeds)",
               title=f"{primary} against {front['label'].split(' (')[0]}")
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    methods = list(next(iter(fronts.values()))["methods"])  # filled or not differs by panel: the legend is colour
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[m], markersize=8) for m in methods]
    fig.legend(handles, methods, loc="outside lower center", ncol=min(len(methods), 8), fontsize=9)
    fig.suptitle("Pareto front: filled = no other method scores as well or better at a lower or equal cost (on the "
                 "means); bars = 95% t-interval over the seeds", fontsize=10)
    return save_figure(fig, out)
