"""Statistics for paired runs: one declared primary metric decides, the rest are Holm-corrected.

Design (docs/statistics.md):
- Per method: mean, median, min, max, SD and a 95% t-interval of the mean at every number of runs (a BCa
  bootstrap interval of 12 normal scores covered 90.3% against t's 94.8% in a 2,000-repetition check: the
  bootstrap under-covers at the run counts studies use).
- Method A minus B over paired seeds (pair k: same data draw, same batch order): mean
  difference, t-interval, paired t-test; an exact sign-flip permutation test from 6 pairs
  (below that it cannot reach p < 0.05); the within-pair correlation (Dror et al. 2018:
  paired tests for systems scored on the same test set).
- Test-set sampling noise from the predictions (`test_level`): a paired bootstrap over test examples
  stratified by (group, label), one resample shared by every pair (they share the test set): per pair its SE
  and McNemar's exact test of those two trained models; for the mean its SE; and a two-level bootstrap
  (resample pairs, then test examples). The verdict (verdict.py) adds to SD^2/n only the part of this noise
  that the pairs share, since the spread of the differences already holds each pair's own.
- ASO (deepsig, Dror et al. 2019) on the primary metric at its default 1,000 iterations,
  with `num_comparisons` set: supporting evidence, never a verdict on its own.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

from ..evaluation.metrics import per_class_scores
from ..metric_names import OVERALL_METRICS

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_PAIRS = 3  # below this, no verdict at all (ASO too)
MIN_PAIRS_PERMUTATION = 6  # 2 / 2^5 = 0.0625: an exact sign-flip test cannot reach p < 0.05 below 6 pairs
TEST_BOOTSTRAP_RESAMPLES = 1000  # the least the test-set bootstrap draws
# c_hat, the test-set variance shared by the pairs, is a small difference of large bootstrap variances: at 3 pairs
# on the quickstart's 450 examples 1,000 resamples leave it a Monte Carlo error of ~40% of its value (the "how many
# pairs" sentence then changed with the bootstrap seed). The bootstrap draws on until that error is at most
# SHARED_TARGET_RELATIVE_ERROR of c_hat, or SHARED_MAX_RESAMPLES are drawn (20,000: 0.2-1.2 s for 450-3,000 examples
# at 3-12 pairs, 2.7 s for 10,000 at 5, one thread of an AMD EPYC); what error remains is carried into the sentences
# that rest on c_hat (analysis/verdict.py).
SHARED_TARGET_RELATIVE_ERROR = 0.05
SHARED_MAX_RESAMPLES = 20_000
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


def describe(values: Sequence[float], seed: int = 0, bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict:
    """Summary of one method's scores with the 95% t-interval of their mean (`ci_method` names it). A score's
    interval is cut at its bounds (a t-interval over 2 runs may reach far past them); `ci_clipped` says so."""
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
    if arr.size >= 2:
        out["ci_low"], out["ci_high"] = t_interval(arr)
        out["ci_method"] = "t"
    out["ci_clipped"] = False
    if bounds is not None and out["ci_low"] is not None:
        low, high = max(out["ci_low"], bounds[0]), min(out["ci_high"], bounds[1])
        out["ci_clipped"] = (low, high) != (out["ci_low"], out["ci_high"])
        out["ci_low"], out["ci_high"] = low, high
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
    if n >= 3 and np.ptp(va) > 0 and np.ptp(vb) > 0:  # (equal floats can have a std of 1e-17)
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

TEST_LEVEL_METRICS = OVERALL_METRICS


def _confusions(y_true: np.ndarray, y_pred: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Confusion matrices (B, k, k) of the test resamples `idx` (B, n), in one bincount."""
    codes = y_true[idx] * k + y_pred[idx] + (np.arange(idx.shape[0]) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=idx.shape[0] * k * k).reshape(idx.shape[0], k, k)


def metric_from_confusions(cm: np.ndarray, metric: str, classes: np.ndarray) -> np.ndarray:
    """The overall metric of each confusion matrix in `cm` (B, k, k), as evaluation/metrics.py computes it (macro
    over `classes`, the classes present in the ground truth)."""
    if metric == "accuracy":
        return np.trace(cm, axis1=1, axis2=2) / np.maximum(cm.sum(axis=(1, 2)), 1)
    precision, recall, f1 = per_class_scores(cm)
    return {"macro_f1": f1, "macro_precision": precision, "macro_recall": recall}[metric][:, classes].mean(axis=1)


def metric_from_predictions(y_true: np.ndarray, y_pred: np.ndarray, metric: str, classes: np.ndarray) -> float:
    """The overall metric as evaluation/metrics.py computes it (macro over `classes`), via one bincount."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(max(classes.max(), y_true.max(), y_pred.max())) + 1
    whole = np.arange(y_true.size)[None, :]
    return float(metric_from_confusions(_confusions(y_true, y_pred, whole, k), metric, classes)[0])


def stratified_resamples(strata: Sequence, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` bootstrap resamples of test examples (n_boot, n), each drawn within every stratum (sizes kept)."""
    codes = np.unique(np.asarray(strata, dtype=object).astype(str), return_inverse=True)[1]
    parts = []
    for c in range(codes.max() + 1):
        members = np.flatnonzero(codes == c)
        parts.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
    return np.concatenate(parts, axis=1)


def cluster_resample_weights(strata: Sequence, clusters: Sequence, n_boot: int,
                             rng: np.random.Generator) -> np.ndarray:
    """`n_boot` cluster-bootstrap resamples as example weights (n_boot, n): within every stratum, as many clusters as
    it holds are drawn with replacement, and each example counts as often as its cluster was drawn. Examples that
    belong together (reviews of one film, texts of one user) are resampled together, so their shared noise stays in
    the resamples' spread instead of averaging out."""
    keys = [f"{s}|{c}" for s, c in zip(np.asarray(strata, dtype=object).astype(str),
                                       np.asarray(clusters, dtype=object).astype(str))]
    cluster_codes = np.unique(keys, return_inverse=True)[1]
    stratum_of_cluster: dict[int, str] = {}
    for code, stratum in zip(cluster_codes, np.asarray(strata, dtype=object).astype(str)):
        stratum_of_cluster.setdefault(int(code), stratum)
    counts = np.zeros((n_boot, cluster_codes.max() + 1))
    for stratum in sorted(set(stratum_of_cluster.values())):
        members = np.array([c for c, st in stratum_of_cluster.items() if st == stratum])
        counts[:, members] = rng.multinomial(members.size, np.full(members.size, 1 / members.size), size=n_boot)
    return counts[:, cluster_codes]


def mcnemar_exact_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int(np.sum(correct_a & correct_b)), int(np.sum(correct_a & ~correct_b))],
             [int(np.sum(~correct_a & correct_b)), int(np.sum(~correct_a & ~correct_b))]]
    return float(mcnemar(table, exact=True).pvalue)


BOOTSTRAP_BLOCK = 200  # resamples per block: (200, n_test) index arrays stay small for large test sets


def shared_variance_estimate(diffs: np.ndarray) -> tuple[float, float]:
    """c_hat (not floored) and its Monte Carlo standard error from the bootstrap's pair differences (B, n).

    c_hat = (n^2 SE_test^2 - sum_k se_k^2) / (n (n - 1)) is the mean off-diagonal covariance of the columns, i.e. the
    mean over resamples of h_b = sum_{j != k} x_bj x_bk / (n (n - 1)) (x centred, divided by B - 1 rather than B),
    so its Monte Carlo error is that of a mean: sd(h) / sqrt(B)."""
    b, n = diffs.shape
    if n < 2 or b < 2:
        return 0.0, 0.0
    x = diffs - diffs.mean(axis=0)
    h = (x.sum(axis=1) ** 2 - (x ** 2).sum(axis=1)) / (n * (n - 1))
    return float(h.sum() / (b - 1)), float(h.std(ddof=1) / math.sqrt(b))


def _enough_resamples(diffs: np.ndarray) -> bool:
    """Whether c_hat's Monte Carlo error is small against its value (or cannot get smaller within the cap)."""
    if diffs.shape[0] >= SHARED_MAX_RESAMPLES or diffs.shape[1] < 2:
        return True
    value, error = shared_variance_estimate(diffs)
    return error <= SHARED_TARGET_RELATIVE_ERROR * abs(value)


def bootstrap_test_set(y_true: np.ndarray, preds_a: dict[int, np.ndarray], preds_b: dict[int, np.ndarray],
                       strata: Sequence, metric: str, n_boot: int | None = None, seed: int = 0,
                       clusters: Sequence | None = None, cluster_strata: Sequence | None = None) -> dict:
    """Test-set sampling noise of A - B with the models fixed: per pair its SE (`se`, whose square estimates that
    pair's test variance v_k), and for the mean over pairs `se_test` (its square: mean(v_k)/n + c(n-1)/n, where c is
    the covariance of the pairs' test deviations: they share one test set). One resample is shared by all pairs.
    Also per pair a percentile interval and McNemar's exact test (of those two trained models), and the two-level
    bootstrap (resample pairs, then test examples). With `clusters` (one id per example), whole clusters are
    resampled within `cluster_strata` (the source: a cluster's examples may hold several labels) instead of single
    examples within `strata`. Without `n_boot`, it draws at least TEST_BOOTSTRAP_RESAMPLES and goes on, 1,000 at a
    time, until c_hat's Monte Carlo error is small against it (`_enough_resamples`)."""
    y_true = np.asarray(y_true)
    seeds = sorted(set(preds_a) & set(preds_b))
    classes = np.unique(y_true)
    k = int(max(classes.max(), *(p.max() for p in (*preds_a.values(), *preds_b.values())))) + 1
    rng = np.random.default_rng(seed)
    # diffs[b, j]: A - B on pair j under test resample b (one resample shared by all pairs)
    adaptive = n_boot is None
    n_boot = TEST_BOOTSTRAP_RESAMPLES if adaptive else n_boot
    diffs = np.empty((0, len(seeds)))
    cells = _one_hot_cells(y_true, preds_a, preds_b, seeds, k)
    while True:
        diffs = np.concatenate([diffs, _resampled_diffs(y_true, cells, seeds, strata, metric, classes, k,
                                                        n_boot - diffs.shape[0], rng, clusters, cluster_strata)])
        if not adaptive or _enough_resamples(diffs):
            break
        n_boot += TEST_BOOTSTRAP_RESAMPLES
    shared_error = shared_variance_estimate(diffs)[1]
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
    # two-level: resample pairs, then (already done above) test examples
    picks = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    two_level = np.take_along_axis(diffs, picks, axis=1).mean(axis=1)
    return {
        "metric": metric, "n_test": int(y_true.size), "n_resamples": n_boot, "per_seed": per_seed,
        "resampled": "examples" if clusters is None else "clusters",
        **({} if clusters is None else {"n_clusters": len(set(map(str, clusters)))}),
        "se_test": float(diffs.mean(axis=1).std(ddof=1)),
        # c_hat's Monte Carlo standard error (the verdict's sentences that rest on c_hat carry it)
        "shared_variance_mc_se": shared_error if len(seeds) > 1 else None,
        "two_level_ci_low": float(np.percentile(two_level, lo)),
        "two_level_ci_high": float(np.percentile(two_level, hi)),
        "two_level_se": float(two_level.std(ddof=1)),
    }


def _one_hot_cells(y_true: np.ndarray, preds_a: dict, preds_b: dict, seeds: list, k: int) -> np.ndarray:
    """(n_test, 2 * pairs * k * k): column block 2j holds pair j's A, 2j + 1 its B, one-hot over (label, predicted)."""
    n = y_true.size
    cells = np.zeros((n, 2 * len(seeds) * k * k))
    rows = np.arange(n)
    for m, pred in enumerate(p for s in seeds for p in (preds_a[s], preds_b[s])):
        cells[rows, m * k * k + y_true * k + pred] = 1.0
    return cells


def _resampled_diffs(y_true, cells, seeds, strata, metric, classes, k, n_boot, rng, clusters,
                     cluster_strata) -> np.ndarray:
    """A - B on every pair under `n_boot` new test resamples (n_boot, pairs), drawn in blocks. Each block's resamples
    become example weights (how often each example was drawn), and every (pair, method)'s confusion matrices come
    from one matrix product of those weights with the examples' one-hot cells (`_one_hot_cells`): 5x faster than a
    bincount per pair and method at 10 pairs, with the same draws and exactly the same counts."""
    n = y_true.size
    diffs = np.empty((n_boot, len(seeds)))
    for start in range(0, n_boot, BOOTSTRAP_BLOCK):
        size = min(BOOTSTRAP_BLOCK, n_boot - start)
        if clusters is None:
            idx = stratified_resamples(strata, size, rng)
            weights = np.bincount((idx + (np.arange(size) * n)[:, None]).ravel(), minlength=size * n)
            weights = weights.reshape(size, n).astype(np.float64)
        else:
            weights = cluster_resample_weights(cluster_strata if cluster_strata is not None else strata, clusters,
                                               size, rng)
        confusions = (weights @ cells).reshape(size, 2 * len(seeds), k, k)
        for j in range(len(seeds)):
            diffs[start:start + size, j] = (metric_from_confusions(confusions[:, 2 * j], metric, classes)
                                            - metric_from_confusions(confusions[:, 2 * j + 1], metric, classes))
    return diffs
