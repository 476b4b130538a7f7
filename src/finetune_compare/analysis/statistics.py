"""Statistics over repeated runs: per-method summaries and paired method comparisons.

- Per method and metric: mean, standard deviation (ddof=1), 95% bootstrap CI of the mean
  (`scipy.stats.bootstrap`, BCa; percentile where BCa is undefined, e.g. all values equal).
- Per metric, method A minus method B over paired seeds: the mean difference and its 95%
  bootstrap CI, Welch's t-test p-value (`scipy.stats.ttest_ind(equal_var=False)`), and
  Almost Stochastic Order `eps_min` (deepsig; Dror et al. 2019, del Barrio et al. 2018):
  eps_min(A, B) < 0.5 means A tends to beat B, and below ~0.2 the evidence is strong.
- A plain-language verdict that says so when there are too few runs to conclude.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
MIN_RUNS_TO_CONCLUDE = 3
ASO_STRONG = 0.2
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 9999
# deepsig's default is 1000 bootstrap iterations (3.6 s per call here); 500 gave eps_min
# within 0.01 of it at 1.5 s, and a report makes two calls per metric and comparison.
ASO_BOOTSTRAP_ITERATIONS = 500


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def bootstrap_ci(values: Sequence[float], seed: int = 0) -> tuple[float | None, float | None, str | None]:
    """95% bootstrap CI of the mean: (low, high, method used); (None, None, None) below 2 values."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None, None, None
    if np.allclose(arr, arr[0]):
        return float(arr[0]), float(arr[0]), "degenerate"
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((arr,), np.mean, confidence_level=CONFIDENCE, method=method,
                                  n_resamples=BOOTSTRAP_RESAMPLES, random_state=seed)
        low, high = _finite(res.confidence_interval.low), _finite(res.confidence_interval.high)
        if low is not None and high is not None:
            return low, high, method
    return None, None, None


def describe(values: Sequence[float], seed: int = 0) -> dict:
    arr = np.asarray(values, dtype=float)
    low, high, method = bootstrap_ci(arr, seed)
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()) if arr.size else None,
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "ci_low": low, "ci_high": high, "ci_method": method,
        "values": [float(v) for v in arr],
    }


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float | None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    if np.allclose(a, a[0]) and np.allclose(b, b[0]):
        return 1.0 if np.isclose(a[0], b[0]) else 0.0  # no variance: the t statistic is undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.ttest_ind(a, b, equal_var=False).pvalue)


def aso_eps_min(a: Sequence[float], b: Sequence[float], seed: int = 0) -> float | None:
    """eps_min that A is stochastically larger than B (deepsig); None below 2 runs each."""
    if len(a) < 2 or len(b) < 2:
        return None
    from deepsig import aso

    if np.allclose(a, a[0]) and np.allclose(b, b[0]) and np.isclose(a[0], b[0]):
        return 1.0  # identical constants: no evidence either way (ASO's own answer here is unstable)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(aso(list(map(float, a)), list(map(float, b)), confidence_level=CONFIDENCE,
                           num_bootstrap_iterations=ASO_BOOTSTRAP_ITERATIONS, num_jobs=1, show_progress=False,
                           seed=seed))


def verdict(name_a: str, name_b: str, metric: str, cmp: dict) -> str:
    n = cmp["n_pairs"]
    d = cmp["diff_mean"]
    if n < MIN_RUNS_TO_CONCLUDE:
        return (f"Too few runs to conclude ({n} paired run{'s' if n != 1 else ''}; need >= {MIN_RUNS_TO_CONCLUDE}, "
                f"5+ recommended): {name_a} - {name_b} = {d:+.4f} {metric} is not evidence either way.")
    low, high = cmp["diff_ci_low"], cmp["diff_ci_high"]
    p, eps_ab, eps_ba = cmp["welch_p"], cmp["aso_eps_min"], cmp["aso_eps_min_reverse"]
    ci = f"95% CI [{low:+.4f}, {high:+.4f}]" if low is not None else "no CI"
    ci_excludes_zero = low is not None and (low > 0 or high < 0)
    significant = p is not None and p < ALPHA
    better, worse = (name_a, name_b) if d > 0 else (name_b, name_a)
    if ci_excludes_zero and significant:
        strength = ""
        eps_better = eps_ab if d > 0 else eps_ba
        if eps_better is not None:
            strength = f"; ASO eps_min {eps_better:.2f}" + (" (strong)" if eps_better < ASO_STRONG else "")
        return f"{better} beats {worse} on {metric} by {abs(d):.4f} ({ci}, Welch p={p:.3g}{strength})."
    if ci_excludes_zero or significant:
        why = (f"the bootstrap {ci} excludes 0 but Welch p={p:.3g}" if ci_excludes_zero
               else f"Welch p={p:.3g} but the bootstrap {ci} includes 0")
        return (f"Weak evidence that {better} beats {worse} on {metric} by {abs(d):.4f}: {why}; "
                f"more seeds needed ({n} paired runs).")
    if eps_ab is not None and eps_ab < ASO_STRONG:
        return f"{name_a} almost stochastically dominates {name_b} on {metric} (eps_min {eps_ab:.2f}), " \
               f"but the mean difference {d:+.4f} is not significant ({ci}, p={p:.3g})."
    if eps_ba is not None and eps_ba < ASO_STRONG:
        return f"{name_b} almost stochastically dominates {name_a} on {metric} (eps_min {eps_ba:.2f}), " \
               f"but the mean difference {d:+.4f} is not significant ({ci}, p={p:.3g})."
    p_txt = f"p={p:.3g}" if p is not None else "p n/a"
    return f"No reliable difference on {metric}: {name_a} - {name_b} = {d:+.4f} ({ci}, {p_txt}) is within run-to-run noise."


def compare_paired(a: dict[int, float], b: dict[int, float], name_a: str, name_b: str, metric: str,
                   seed: int = 0) -> dict:
    """A minus B over the seeds both have (paired); `a` and `b` map seed -> score."""
    seeds = sorted(set(a) & set(b))
    va, vb = [a[s] for s in seeds], [b[s] for s in seeds]
    diffs = np.asarray(va) - np.asarray(vb)
    low, high, method = bootstrap_ci(diffs, seed)
    out = {
        "a": name_a, "b": name_b, "metric": metric, "seeds": seeds, "n_pairs": len(seeds),
        "diff_mean": float(diffs.mean()) if len(seeds) else float("nan"),
        "diff_ci_low": low, "diff_ci_high": high, "ci_method": method,
        "welch_p": welch_p_value(va, vb),
        # ASO on fewer runs than we need to conclude anything would only cost time
        "aso_eps_min": aso_eps_min(va, vb, seed) if len(seeds) >= MIN_RUNS_TO_CONCLUDE else None,
        "aso_eps_min_reverse": aso_eps_min(vb, va, seed) if len(seeds) >= MIN_RUNS_TO_CONCLUDE else None,
    }
    out["verdict"] = verdict(name_a, name_b, metric, out)
    return out
