"""The forest plot of what each method gives up: one row per compared figure (the verdict's primary metric, the
in-domain and out-of-domain scores, each method's change from the base checkpoint), each a difference with its
95% interval, the zero line, and the declared equivalence margin as a band around it. Filled: detected;
hollow: not detected (not evidence of no difference)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .plots import save_figure  # noqa: E402


def forest_rows(cmp: dict) -> list[dict]:
    """[{label, mean, low, high, detected, color_of}] from top to bottom, the same figures as the report's tables."""
    g = cmp["gives_up"]
    rows = []
    for name, c in cmp["comparisons"].items():
        v = c["primary"]["verdict"]
        rows.append({"label": f"{c['a']} - {c['b']}: verdict, {c['primary_metric']}", "mean": c["primary"]["diff_mean"],
                     "low": v.get("ci_low"), "high": v.get("ci_high"), "detected": v["kind"] in ("better", "worse"),
                     "method": c["a"]})
        for r in g["comparisons"].get(name, []):
            rows.append({"label": f"{r['a']} - {r['b']}: {r['metric']}", "mean": r["diff_mean"], "low": r["ci_low"],
                         "high": r["ci_high"], "detected": bool(r.get("detected")), "method": r["a"]})
    for m, r in ((g.get("forgetting") or {}).get("methods") or {}).items():
        rows.append({"label": f"{m} - base: {g['forgetting']['metric']}", "mean": r["diff_mean"], "low": r["ci_low"],
                     "high": r["ci_high"], "detected": bool(r.get("detected")), "method": m})
    return rows


def gives_up_plot(cmp: dict, colors: dict, out: Path) -> Path:
    rows = forest_rows(cmp)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6), constrained_layout=True)
    margin = cmp.get("equivalence_margin")
    if margin:
        ax.axvspan(-margin, margin, color="0.88", label=f"equivalence margin ±{margin:g} (the verdict's)")
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
    ax.invert_yaxis()
    ax.set_xlabel("difference (score units, 0-1 scale)")
    ax.grid(axis="x", alpha=0.3)
    ax.scatter([], [], facecolor="black", edgecolor="black", label="detected")
    ax.scatter([], [], facecolor="white", edgecolor="black", label="not detected (not evidence of no difference)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=3)  # never over a row
    ax.set_title("What each method gives up: differences with 95% intervals (seeds + test set)", fontsize=10)
    return save_figure(fig, out)
