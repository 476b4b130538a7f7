"""The forest plot of what each method gives up: one row per compared figure (the verdict's primary metric, the
in-domain and out-of-domain scores, CKA and intruder dimensions, each method's change from the base checkpoint),
each a difference with its 95% interval, the zero line, and the declared equivalence margin as a band around it.
Filled: detected; hollow: not detected (not evidence of no difference). Intruder counts get their own axis."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .plots import save_figure  # noqa: E402


COUNTS = {"intruders_total"}  # figures counted, not scored: drawn on their own axis


def forest_rows(cmp: dict) -> list[dict]:
    """[{label, mean, low, high, detected, method, counted}] from top to bottom, the figures of the report's tables."""
    g = cmp["gives_up"]
    rows = []
    for name, c in cmp["comparisons"].items():
        v = c["primary"]["verdict"]
        rows.append({"label": f"{c['a']} - {c['b']}: verdict, {c['primary_metric']}", "mean": c["primary"]["diff_mean"],
                     "low": v.get("ci_low"), "high": v.get("ci_high"), "detected": v["kind"] in ("better", "worse"),
                     "method": c["a"], "counted": False})
        for r in [*g["comparisons"].get(name, []), *(g.get("per_source") or {}).get(name, [])]:
            rows.append({"label": f"{r['a']} - {r['b']}: {r['metric']}", "mean": r["diff_mean"], "low": r["ci_low"],
                         "high": r["ci_high"], "detected": bool(r.get("detected")), "method": r["a"],
                         "counted": r["metric"] in COUNTS})
    for m, r in ((g.get("forgetting") or {}).get("methods") or {}).items():
        rows.append({"label": f"{m} - base: {g['forgetting']['metric']}", "mean": r["diff_mean"], "low": r["ci_low"],
                     "high": r["ci_high"], "detected": bool(r.get("detected")), "method": m, "counted": False})
    return rows


def _draw(ax, rows: list[dict], colors: dict) -> None:
    ax.axvline(0, color="black", linewidth=0.8)
    for y, r in enumerate(rows):
        if r["mean"] is None:
            continue
        color = colors.get(r["method"], "C0")
        if r["low"] is not None:
            ax.plot([r["low"], r["high"]], [y, y], color=color, linewidth=2)
        ax.scatter([r["mean"]], [y], s=50, zorder=3, edgecolor=color, linewidth=1.5,
                   facecolor=color if r["detected"] else "white")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)


def gives_up_plot(cmp: dict, colors: dict, out: Path) -> Path:
    rows = forest_rows(cmp)
    scored, counted = [r for r in rows if not r["counted"]], [r for r in rows if r["counted"]]
    panels = [p for p in (scored, counted) if p]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.45 * len(rows) + 1.2 * len(panels) + 0.6),
                             constrained_layout=True, squeeze=False,
                             gridspec_kw={"height_ratios": [len(p) + 1 for p in panels]})
    margin = cmp.get("equivalence_margin")
    if margin:
        axes[0][0].axvspan(-margin, margin, color="0.88", label=f"equivalence margin ±{margin:g} (the verdict's)")
    for (ax,), panel in zip(axes, panels):
        _draw(ax, panel, colors)
        ax.set_xlabel("difference (score or CKA units, 0-1 scale)" if panel is scored else
                      "difference (intruder dimensions, a count)")
    ax = axes[0][0]
    ax.scatter([], [], facecolor="black", edgecolor="black", label="detected")
    ax.scatter([], [], facecolor="white", edgecolor="black", label="not detected (not evidence of no difference)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=3)  # never over a row
    fig.suptitle("What each method gives up: differences with 95% intervals (scores: seeds + test set; drift: "
                 "seeds)", fontsize=10)
    return save_figure(fig, out)
