"""Synthetic paired runs for checking a decision rule before trusting it (tests and benchmarks use these).

Pair k shares a component (same data draw, batch order); each method adds its own seed noise; the
paired differences have SD `diff_sd` and mean `effect_sd * diff_sd`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .statistics import decide, paired


def paired_scores(rng: np.random.Generator, n_pairs: int, effect_sd: float,
                  diff_sd: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    shared = rng.normal(0.6, 0.02, n_pairs)
    b = shared + rng.normal(0, math.sqrt(0.5) * diff_sd, n_pairs)
    a = shared + effect_sd * diff_sd + rng.normal(0, math.sqrt(0.5) * diff_sd, n_pairs)
    return a, b


def simulate_rule(rule: Callable[[np.ndarray, np.ndarray, int], tuple[bool, float, float]], n_pairs: int,
                  effect_sd: float, reps: int, seed: int = 0, diff_sd: float = 0.01) -> dict:
    """Share of directional claims and of intervals covering the true difference, over `reps` simulations.

    `rule(a, b, rep)` returns (claims a difference, interval low, interval high).
    """
    rng = np.random.default_rng(seed)
    claims = covered = 0
    for rep in range(reps):
        a, b = paired_scores(rng, n_pairs, effect_sd, diff_sd)
        claim, low, high = rule(a, b, rep)
        claims += bool(claim)
        covered += low is not None and low <= effect_sd * diff_sd <= high
    return {"claims": claims / reps, "coverage": covered / reps}


def project_rule(a: np.ndarray, b: np.ndarray, rep: int = 0) -> tuple[bool, float, float]:
    """This project's verdict (`statistics.decide`) on seed-level scores."""

    v = decide("a", "b", "m", paired(dict(enumerate(a)), dict(enumerate(b))))
    return v["kind"] in ("better", "worse"), v["ci_low"], v["ci_high"]
