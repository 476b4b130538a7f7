"""Statistics for paired runs: one declared primary metric decides, the rest are Holm-corrected.

Design (docs/statistics.md):
- Per method: mean, median, min, max, SD and a 95% t-interval of the mean; a bootstrap
  interval (BCa) only from BOOTSTRAP_FROM_N runs, where it stops under-covering.
- Method A minus B over paired seeds (pair k: same data draw, same batch order): mean
  difference, t-interval, paired t-test; an exact sign-flip permutation test from 6 pairs
  (below that it cannot reach p < 0.05); the within-pair correlation (Dror et al. 2018:
  paired tests for systems scored on the same test set).
- Test-set sampling noise from the predictions (`test_level`): per seed, a paired bootstrap
  over test examples stratified by (group, label) and McNemar's exact test on per-example
  correctness; across seeds, a two-level bootstrap (resample seeds, then test examples) of
  the mean difference. Every run is scored on the same test set, so one test resample is
  shared by all seeds of a replicate: the test-set effect is common to the seeds, not
  independent per seed.
- The verdict's interval combines both sources: mean +- t(n-1) * sqrt(SD^2/n + SE_test^2). The
  seed variance already holds part of the per-seed test noise, so this is slightly
  conservative; a pure bootstrap over 3-5 seeds would under-cover (simulated 71-85%).
- ASO (deepsig, Dror et al. 2019) on the primary metric at its default 1,000 iterations,
  with `num_comparisons` set: supporting evidence, never a verdict on its own.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.80
MIN_PAIRS = 3  # below this, no verdict at all
MIN_PAIRS_PERMUTATION = 6  # 2 / 2^5 = 0.0625: an exact sign-flip test cannot reach p < 0.05 below 6 pairs
BOOTSTRAP_FROM_N = 10  # a bootstrap interval of a mean over fewer runs under-covers badly
BOOTSTRAP_RESAMPLES = 9999
TEST_BOOTSTRAP_RESAMPLES = 1000
ASO_ITERATIONS = 1000  # deepsig's default; its docs advise against fewer


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _t(q: float, df: int) -> float:
    return float(stats.t.ppf(q, df))


# --------------------------------------------------------------------------------------
# One method's scores over seeds
# --------------------------------------------------------------------------------------

def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None, None
    half = _t(0.5 + confidence / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean() - half), float(arr.mean() + half)


def bootstrap_ci(values: Sequence[float], seed: int = 0) -> tuple[float | None, float | None]:
    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or np.allclose(arr, arr[0]):
        return (float(arr[0]), float(arr[0])) if arr.size else (None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((arr,), np.mean, confidence_level=CONFIDENCE, method="BCa",
                              n_resamples=BOOTSTRAP_RESAMPLES, random_state=seed)
    return _finite(res.confidence_interval.low), _finite(res.confidence_interval.high)


def describe(values: Sequence[float], seed: int = 0) -> dict:
    """Summary of one method's scores: t-interval below BOOTSTRAP_FROM_N runs, BCa bootstrap from there."""
    arr = np.asarray(values, dtype=float)
    out = {
        "n": int(arr.size),
        "mean": float(arr.mean()) if arr.size else None,
        "median": float(np.median(arr)) if arr.size else None,
        "min": float(arr.min()) if arr.size else None,
        "max": float(arr.max()) if arr.size else None,
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "ci_low": None, "ci_high": None, "ci_method": None,
        "values": [float(v) for v in arr],
    }
    if arr.size >= BOOTSTRAP_FROM_N:
        out["ci_low"], out["ci_high"] = bootstrap_ci(arr, seed)
        out["ci_method"] = "bootstrap (BCa)"
    elif arr.size >= 2:
        out["ci_low"], out["ci_high"] = t_interval(arr)
        out["ci_method"] = "t"
    return out


# --------------------------------------------------------------------------------------
# Paired seeds
# --------------------------------------------------------------------------------------

def sign_flip_p(diffs: Sequence[float], max_exact: int = 16, n_random: int = 100_000) -> float | None:
    """Two-sided sign-flip permutation p-value of the mean difference (None below 6 pairs).

    Exact (all 2^n sign patterns, vectorised) up to `max_exact` pairs, a seeded Monte Carlo beyond.
    scipy.stats.permutation_test gives the same values but took ~5 ms per call at 10 pairs, which the
    decision-rule simulations call thousands of times.
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n < MIN_PAIRS_PERMUTATION:
        return None
    if n <= max_exact:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1, 1], size=(n_random, n))
    means = np.abs(signs @ np.abs(d)) / n
    return float(np.mean(means >= abs(d.mean()) - 1e-12))


def paired_t_p(diffs: np.ndarray) -> float | None:
    if diffs.size < 2:
        return None
    if np.allclose(diffs, diffs[0]):
        return 1.0 if math.isclose(diffs[0], 0.0, abs_tol=1e-12) else None  # no spread: t undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.ttest_1samp(diffs, 0.0).pvalue)


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """A minus B over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    va, vb = np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)
    d = va - vb
    n = int(d.size)
    low, high = t_interval(d)
    corr = None
    if n >= 3 and va.std() > 0 and vb.std() > 0:
        corr = _finite(stats.pearsonr(va, vb).statistic)
    return {
        "seeds": seeds, "n_pairs": n, "diffs": [float(x) for x in d],
        "diff_mean": float(d.mean()) if n else None,
        "diff_sd": float(d.std(ddof=1)) if n > 1 else None,
        "t_ci_low": low, "t_ci_high": high,
        "t_p": paired_t_p(d),
        "sign_flip_p": sign_flip_p(d),
        "sign_flip_note": None if n >= MIN_PAIRS_PERMUTATION else
        f"not run: with {n} pairs an exact sign-flip test cannot reach p < 0.05 (needs >= {MIN_PAIRS_PERMUTATION})",
        "within_pair_correlation": corr,
    }


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values (statsmodels); None stays None."""
    from statsmodels.stats.multitest import multipletests

    keys = [k for k, p in p_values.items() if p is not None]
    out: dict[str, float | None] = {k: None for k in p_values}
    if keys:
        adjusted = multipletests([p_values[k] for k in keys], alpha=ALPHA, method="holm")[1]
        out.update({k: float(v) for k, v in zip(keys, adjusted)})
    return out


def aso(a: Sequence[float], b: Sequence[float], num_comparisons: int = 1, seed: int = 0) -> float | None:
    """eps_min that A is stochastically larger than B (deepsig; < 0.5: A tends to win)."""
    if len(a) < MIN_PAIRS or len(b) < MIN_PAIRS:
        return None
    if np.allclose(a, a[0]) and np.allclose(b, b[0]) and np.isclose(a[0], b[0]):
        return 1.0  # identical constants: no evidence either way (ASO's own answer is unstable here)
    from deepsig import aso as deepsig_aso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(deepsig_aso(list(map(float, a)), list(map(float, b)), confidence_level=CONFIDENCE,
                                   num_comparisons=num_comparisons, num_bootstrap_iterations=ASO_ITERATIONS,
                                   num_jobs=1, show_progress=False, seed=seed))


# --------------------------------------------------------------------------------------
# Test-set sampling noise, from per-example predictions
# --------------------------------------------------------------------------------------

TEST_LEVEL_METRICS = ("macro_f1", "accuracy", "macro_precision", "macro_recall")


def metric_from_predictions(y_true: np.ndarray, y_pred: np.ndarray, metric: str, classes: np.ndarray) -> float:
    """The overall metric as evaluation/metrics.py computes it (macro over `classes`), via one bincount."""
    k = int(max(classes.max(), y_true.max(), y_pred.max())) + 1
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    if metric == "accuracy":
        return float(np.trace(cm) / max(cm.sum(), 1))
    tp = np.diag(cm)[classes].astype(float)
    support, predicted = cm.sum(axis=1)[classes], cm.sum(axis=0)[classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float({"macro_f1": f1, "macro_precision": precision, "macro_recall": recall}[metric].mean())


def stratified_indices(strata: Sequence, rng: np.random.Generator) -> np.ndarray:
    """One bootstrap resample of test examples, drawn within each stratum (sizes kept)."""
    codes = np.unique(np.asarray(strata, dtype=object).astype(str), return_inverse=True)[1]
    parts = [rng.choice(np.flatnonzero(codes == c), size=int((codes == c).sum()), replace=True)
             for c in range(codes.max() + 1)]
    return np.concatenate(parts)


def mcnemar_exact_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int(np.sum(correct_a & correct_b)), int(np.sum(correct_a & ~correct_b))],
             [int(np.sum(~correct_a & correct_b)), int(np.sum(~correct_a & ~correct_b))]]
    return float(mcnemar(table, exact=True).pvalue)


def bootstrap_test_set(y_true: np.ndarray, preds_a: dict[int, np.ndarray], preds_b: dict[int, np.ndarray],
               strata: Sequence, metric: str, n_boot: int = TEST_BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """Per-seed paired bootstrap + McNemar, the test-sampling SE of the mean, and the two-level bootstrap."""
    y_true = np.asarray(y_true)
    seeds = sorted(set(preds_a) & set(preds_b))
    classes = np.unique(y_true)
    rng = np.random.default_rng(seed)
    # diffs[b, k]: A - B on seed k under test resample b (one resample shared by all seeds)
    diffs = np.empty((n_boot, len(seeds)))
    for i in range(n_boot):
        idx = stratified_indices(strata, rng)
        yt = y_true[idx]
        for j, s in enumerate(seeds):
            diffs[i, j] = (metric_from_predictions(yt, preds_a[s][idx], metric, classes)
                           - metric_from_predictions(yt, preds_b[s][idx], metric, classes))
    lo, hi = 100 * ALPHA / 2, 100 * (1 - ALPHA / 2)
    per_seed = []
    for j, s in enumerate(seeds):
        observed = (metric_from_predictions(y_true, preds_a[s], metric, classes)
                    - metric_from_predictions(y_true, preds_b[s], metric, classes))
        per_seed.append({
            "seed": s, "diff": observed, "se": float(diffs[:, j].std(ddof=1)),
            "ci_low": float(np.percentile(diffs[:, j], lo)), "ci_high": float(np.percentile(diffs[:, j], hi)),
            "mcnemar_p": mcnemar_exact_p(preds_a[s] == y_true, preds_b[s] == y_true),
        })
    # two-level: resample seeds, then (already done above) test examples
    picks = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    two_level = np.take_along_axis(diffs, picks, axis=1).mean(axis=1)
    return {
        "metric": metric, "n_test": int(y_true.size), "n_resamples": n_boot, "per_seed": per_seed,
        "se_test": float(diffs.mean(axis=1).std(ddof=1)),
        "two_level_ci_low": float(np.percentile(two_level, lo)),
        "two_level_ci_high": float(np.percentile(two_level, hi)),
        "two_level_se": float(two_level.std(ddof=1)),
    }


# --------------------------------------------------------------------------------------
# The decision rule
# --------------------------------------------------------------------------------------

def _k_power(df: int) -> float:
    return _t(1 - ALPHA / 2, df) + _t(POWER, df)


def minimum_detectable_effect(sd: float, n: int, se_test: float = 0.0) -> float | None:
    """Smallest |difference| detected with 80% power at two-sided 5% (normal-approximation to the noncentral t)."""
    if n < 2 or sd is None:
        return None
    return _k_power(n - 1) * math.sqrt(sd ** 2 / n + se_test ** 2)


def runs_needed(diff: float, sd: float, se_test: float = 0.0, max_runs: int = 1000) -> int | None:
    """Pairs needed to detect `diff` with 80% power; None when more seeds alone cannot (test noise dominates)."""
    if sd is None or diff == 0:
        return None

    def enough(n: int) -> bool:  # monotone in n: bisect instead of scanning
        return _k_power(n - 1) * math.sqrt(sd ** 2 / n + se_test ** 2) <= abs(diff)

    if not enough(max_runs):
        return None
    lo, hi = 2, max_runs
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo


def combined_interval(p: dict, se_test: float | None, confidence: float = CONFIDENCE) -> dict:
    """Mean +- t(n-1) * sqrt(SD^2/n + SE_test^2): seed noise and test-set sampling noise together."""
    n, mean, sd = p["n_pairs"], p["diff_mean"], p["diff_sd"]
    if n < 2 or sd is None:
        return {"low": None, "high": None, "se": None}
    se = math.sqrt(sd ** 2 / n + (se_test or 0.0) ** 2)
    half = _t(0.5 + confidence / 2, n - 1) * se
    return {"low": mean - half, "high": mean + half, "se": se}


def tost_p(mean: float, se: float, df: int, margin: float) -> float | None:
    """Two one-sided tests against +-margin: equivalence is shown when this p < 0.05."""
    if se is None or se <= 0 or margin is None:
        return None
    p_low = 1 - stats.t.cdf((mean + margin) / se, df)
    p_high = stats.t.cdf((mean - margin) / se, df)
    return float(max(p_low, p_high))


def decide(name_a: str, name_b: str, metric: str, p: dict, se_test: float | None = None,
           margin: float | None = None) -> dict:
    """The verdict on the primary metric; its wording follows from the interval and the tests."""
    n, d = p["n_pairs"], p["diff_mean"]
    out = {"kind": "too_few", "n_pairs": n, "equivalence_margin": margin, "se_test": se_test,
           "ci_low": None, "ci_high": None, "se": None, "tost_p": None, "mde": None, "runs_needed": None}
    if n < MIN_PAIRS:
        out["text"] = (f"Too few paired runs to conclude ({n}; need >= {MIN_PAIRS}, 5+ recommended): "
                       + (f"{name_a} - {name_b} = {d:+.4f} {metric} is not evidence either way." if n else
                          "nothing to compare."))
        return out
    ci = combined_interval(p, se_test)
    out.update(ci_low=ci["low"], ci_high=ci["high"], se=ci["se"])
    out["mde"] = minimum_detectable_effect(p["diff_sd"], n, se_test or 0.0)
    out["runs_needed"] = runs_needed(d, p["diff_sd"], se_test or 0.0)
    covers = "seed and test-set sampling noise" if se_test is not None else "seed noise only (no predictions found)"
    interval = f"95% CI [{ci['low']:+.4f}, {ci['high']:+.4f}] over {covers}"
    pt = p["t_p"]
    if margin is not None:
        out["tost_p"] = tost_p(d, ci["se"], n - 1, margin)
    excludes_zero = ci["low"] > 0 or ci["high"] < 0
    if excludes_zero and pt is not None and pt < ALPHA:
        better, worse = (name_a, name_b) if d > 0 else (name_b, name_a)
        out["kind"] = "better" if d > 0 else "worse"
        out["text"] = (f"{better} beats {worse} on {metric} by {abs(d):.4f} ({interval}; paired t-test "
                       f"p={pt:.3g}, {n} pairs).")
    elif out["tost_p"] is not None and out["tost_p"] < ALPHA:
        # TOST at ALPHA is the (1 - 2 ALPHA) interval lying inside the margin: quote that one, so the interval
        # shown and the test agree (the 95% one may reach past the margin while TOST holds).
        tost_ci = combined_interval(p, se_test, 1 - 2 * ALPHA)
        out["kind"] = "equivalent"
        out["equivalence_ci"] = [tost_ci["low"], tost_ci["high"]]
        out["text"] = (f"{name_a} and {name_b} are equivalent on {metric} within the declared margin +-{margin:g}: "
                       f"difference {d:+.4f}, {1 - 2 * ALPHA:.0%} CI [{tost_ci['low']:+.4f}, {tost_ci['high']:+.4f}] "
                       f"inside the margin (TOST p={out['tost_p']:.3g}, {n} pairs; {interval}).")
    else:
        out["kind"] = "inconclusive"
        detect = (f"with {n} pairs a difference smaller than {out['mde']:.4f} cannot be detected (80% power)"
                  if out["mde"] is not None else "the runs are too few to estimate what could be detected")
        out["text"] = f"Inconclusive on {metric}: {name_a} - {name_b} = {d:+.4f} lies in {interval}; {detect}."
    return out
