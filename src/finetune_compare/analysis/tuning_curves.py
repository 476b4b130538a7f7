"""Expected validation performance (Dodge et al. 2019, "Show Your Work"): how much tuning a method needs.

From the validation scores of a method's N trials, the expected best score of n trials (n = 1..N), with its
spread, is the expectation of the maximum of n draws with replacement from the N observed scores:

    E[max_n] = sum_i v_(i) * ((i / N)^n - ((i - 1) / N)^n),   v_(1) <= ... <= v_(N)

and its SD is that distribution's. A curve that is still rising at N says the search was too short to tell the
method's level; two methods' curves side by side say how much each needs before they are compared.
Only trials that ran their whole budget count: a pruned trial's final score is unknown, and taking its last
reported score instead would mix a different quantity into the curve.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

REPORTED_AT = (1, 5, 10)  # and N: the points a report quotes


def expected_max(values: Sequence[float], n: int) -> tuple[float, float]:
    """(mean, SD) of the best of `n` trials drawn with replacement from `values`."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0 or n < 1:
        raise ValueError("expected_max needs at least one value and n >= 1")
    i = np.arange(1, v.size + 1)
    weights = (i / v.size) ** n - ((i - 1) / v.size) ** n
    mean = float(np.sum(weights * v))
    return mean, math.sqrt(max(0.0, float(np.sum(weights * (v - mean) ** 2))))


def expected_validation_curve(values: Sequence[float]) -> list[dict]:
    """[{n, mean, sd}] for n = 1..N."""
    return [dict(zip(("n", "mean", "sd"), (n, *expected_max(values, n)))) for n in range(1, len(values) + 1)]


def reported_points(curve: list[dict]) -> list[dict]:
    """The curve at 1, 5, 10 and N trials (those it reaches)."""
    wanted = sorted({n for n in REPORTED_AT if n <= len(curve)} | ({len(curve)} if curve else set()))
    return [curve[n - 1] for n in wanted]


def curve_summary(values: Sequence[float], trials: int, pruned: int) -> dict:
    """What a study's summary records: the curve, its quoted points and what it is based on."""
    curve = expected_validation_curve(values) if len(values) else []
    return {"complete_trials": len(values), "trials": trials, "pruned_left_out": pruned, "curve": curve,
            "at": reported_points(curve)}


def curve_text(method: str, metric: str, summary: dict) -> str:
    """One line: the expected best validation score at 1, 5, 10 and N trials."""
    if not summary["curve"]:
        return f"{method}: no complete trial, no expected validation curve"
    points = ", ".join(f"{p['n']}: {p['mean']:.4f} ± {p['sd']:.4f}" for p in summary["at"])
    left = f"; {summary['pruned_left_out']} pruned trial(s) left out" if summary["pruned_left_out"] else ""
    return f"{method}: expected best validation {metric} after n trials (± SD) {points} ({summary['complete_trials']} " \
           f"complete trials{left})"


def plot_expected_validation(summaries: dict[str, dict], metric: str, out) -> object | None:
    """Every method's expected best validation score against the number of trials, mean ± SD, in one plot."""
    curves = {m: s["curve"] for m, s in summaries.items() if s["curve"]}
    if not curves:
        return None
    from .plots import method_colors, plt, save_figure

    colors = method_colors(list(curves))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, curve in curves.items():
        n = [p["n"] for p in curve]
        mean, sd = np.array([p["mean"] for p in curve]), np.array([p["sd"] for p in curve])
        ax.plot(n, mean, marker="o", ms=3, color=colors[method], label=f"{method} ({len(curve)} complete trials)")
        ax.fill_between(n, mean - sd, mean + sd, color=colors[method], alpha=0.15)
    ax.set_xlabel("trials (hyperparameter settings tried)")
    ax.set_ylabel(f"expected best validation {metric}")
    ax.set_title("Expected validation performance (Dodge et al. 2019), ± 1 SD")
    ax.legend()
    return save_figure(fig, out)
