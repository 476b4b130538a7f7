"""The verdict on the primary metric: one variance, each source of noise counted once (docs/statistics.md).

Pair k's difference is D_k = delta + S_k + T_k: S_k is seed and data-draw noise (variance sigma_S^2), T_k that
pair's test-sampling deviation (variance v_k). Every pair is scored on the same test set, so the T_k of two pairs
covary by c. Then E[SD^2] = sigma_S^2 + mean(v) - c and

    Var(mean D) = (sigma_S^2 + mean(v)) / n + c (n - 1) / n = E[SD^2] / n + c.

The spread of the differences already holds each pair's own test noise; only the shared part c is added, once.
The test-set bootstrap (one resample shared by all pairs) gives se_k^2 ~ v_k per pair and
SE_test^2 ~ mean(v) / n + c (n - 1) / n for the mean, so

    c_hat = (n^2 SE_test^2 - sum_k se_k^2) / (n (n - 1)), floored at 0.

The interval is mean +- t(n - 1) * sqrt(SD^2 / n + c_hat). With c_hat >= 0 it is never narrower than the paired
t-interval, so "beats" needs only this interval to exclude 0 (the paired t-test's p < 0.05 is then implied).
df = n - 1, the paired t-test's: c_hat comes from 1,000 resamples and is far better determined than SD^2, and
giving c infinite degrees of freedom (Welch-Satterthwaite) could make the interval narrower than the t-interval.
"""

from __future__ import annotations

import math

from scipy import stats

from .planning import POWER, detectable_difference, pairs_for_floor, sd_interval
from .statistics import ALPHA, CONFIDENCE, MIN_PAIRS, _t
from .result_types import RankingRow, Verdict


def shared_test_variance(test_level: dict | None, n: int) -> float | None:
    """c_hat: the covariance of the pairs' test-sampling deviations (their shared test set), floored at 0."""
    if not test_level or n < 2:
        return None
    per_pair = sum(s["se"] ** 2 for s in test_level["per_seed"])
    return max(0.0, (n ** 2 * test_level["se_test"] ** 2 - per_pair) / (n * (n - 1)))


def per_pair_test_variance(test_level: dict | None) -> float | None:
    """mean_k se_k^2: one pair's test-sampling variance, from the bootstrap."""
    if not test_level or not test_level["per_seed"]:
        return None
    return sum(s["se"] ** 2 for s in test_level["per_seed"]) / len(test_level["per_seed"])


def verdict_interval(p: dict, shared: float | None, confidence: float = CONFIDENCE) -> dict:
    """mean +- t(n-1) * sqrt(SD^2/n + c_hat)."""
    n, mean, sd = p["n_pairs"], p["diff_mean"], p["diff_sd"]
    if n < 2 or sd is None:
        return {"low": None, "high": None, "se": None, "df": None}
    se = math.sqrt(sd ** 2 / n + (shared or 0.0))
    half = _t(0.5 + confidence / 2, n - 1) * se
    # a difference of two scores in [0, 1] lies in [-1, 1]: the interval is cut there (never changing whether it
    # holds 0 or lies inside a margin)
    return {"low": max(mean - half, -1.0), "high": min(mean + half, 1.0), "se": se, "df": n - 1,
            "clipped": mean - half < -1.0 or mean + half > 1.0}


def tost_p(mean: float, se: float | None, df: int, margin: float | None) -> float | None:
    """Two one-sided tests against +-margin: equivalence is shown when this p < 0.05."""
    if se is None or se <= 0 or margin is None:
        return None
    p_low = 1 - stats.t.cdf((mean + margin) / se, df)
    p_high = stats.t.cdf((mean - margin) / se, df)
    return float(max(p_low, p_high))


def confidence_label(confidence: float) -> str:
    """95% -> '95%', 1 - 0.05/3 -> '98.3%'."""
    return f"{confidence:.0%}" if round(confidence * 100, 6).is_integer() else f"{confidence:.1%}"


def verdict_p(d: float, se: float | None, df: int) -> float | None:
    """Two-sided p-value of the verdict's test (mean / sqrt(SD^2/n + c_hat) against t(n-1)): the interval at
    confidence 1 - alpha excludes 0 exactly when this p < alpha."""
    if se is None or se <= 0:
        return None
    return float(2 * stats.t.sf(abs(d) / se, df))


def margin_floor(test_level: dict | None, n: int, alpha: float = ALPHA) -> float | None:
    """The smallest half-width the 90% interval (TOST's) can have on this test set at n pairs, even with no seed
    noise at all: t(0.95, n-1) * sqrt(mean(v)/n + c_hat). A margin below it cannot be shown."""
    v, c = per_pair_test_variance(test_level), shared_test_variance(test_level, n)
    if v is None or c is None:
        return None
    return _t(1 - alpha, n - 1) * math.sqrt(v / n + c)


def _margin_note(test_level: dict, n: int, margin: float, n_test: int, alpha: float = ALPHA) -> str | None:
    floor = margin_floor(test_level, n, alpha)
    if floor is None or floor < margin:
        return None
    more = pairs_for_floor(per_pair_test_variance(test_level), shared_test_variance(test_level, n), margin)
    how = (f"about {more} pairs would bring that floor under ±{margin:g} (seed noise not counted)" if more else
           "no number of pairs would (the part shared through the one test set is too large): a larger test set is "
           "needed")
    return (f"The declared margin ±{margin:g} cannot be shown with {n} pairs on these {n_test:,} test examples: "
            f"test-set sampling noise alone keeps the {confidence_label(1 - 2 * alpha)} interval at least "
            f"±{floor:.4f} wide, the "
            "smallest margin "
            f"this test set supports at {n} pairs; {how}.")


def decide(name_a: str, name_b: str, metric: str, p: dict, test_level: dict | None = None,
           margin: float | None = None, comparisons: int = 1) -> Verdict:
    """The verdict on the primary metric; its wording follows from the interval and the tests. With several
    methods compared against one reference (`comparisons` > 1), every claim is made at alpha / comparisons
    (Bonferroni), and its interval at 1 - alpha / comparisons, so a claim and its interval always agree."""
    n, d = p["n_pairs"], p["diff_mean"]
    alpha = ALPHA / comparisons
    conf, tost_level = confidence_label(1 - alpha), confidence_label(1 - 2 * alpha)
    out = {"kind": "too_few", "n_pairs": n, "df": None, "equivalence_margin": margin, "comparisons": comparisons,
           "alpha": alpha, "confidence": 1 - alpha, "p": None, "p_adjusted": None,
           "se_test": test_level["se_test"] if test_level else None, "shared_test_variance": None,
           "ci_low": None, "ci_high": None, "se": None, "tost_p": None, "detectable": None, "margin_floor": None,
           "notes": []}
    if n < MIN_PAIRS:
        out["text"] = (f"Too few paired runs to conclude ({n}; need >= {MIN_PAIRS}, 5+ recommended): "
                       + (f"{name_a} - {name_b} = {d:+.4f} {metric} is not evidence either way." if n else
                          "nothing to compare."))
        return out
    shared = shared_test_variance(test_level, n)
    ci = verdict_interval(p, shared, 1 - alpha)
    out.update(ci_low=ci["low"], ci_high=ci["high"], se=ci["se"], df=ci["df"], shared_test_variance=shared)
    out["p"] = verdict_p(d, ci["se"], n - 1)
    out["p_adjusted"] = None if out["p"] is None else min(1.0, out["p"] * comparisons)
    sd_low, sd_high = sd_interval(p["diff_sd"], n)
    out["detectable"] = {"power": POWER, "value": detectable_difference(p["diff_sd"], n, shared, alpha=alpha),
                         "low": detectable_difference(sd_low, n, shared, alpha=alpha),
                         "high": detectable_difference(sd_high, n, shared, alpha=alpha)}
    covers = ("seed, data-draw and test-set noise" if test_level is not None else
              "seed and data-draw noise only (no predictions found: the shared test-set part is not included)")
    corrected = f", Bonferroni-corrected for {comparisons} comparisons" if comparisons > 1 else ""
    interval = f"{conf} CI [{ci['low']:+.4f}, {ci['high']:+.4f}] over {covers}, df {n - 1}{corrected}"
    if margin is not None:
        out["tost_p"] = tost_p(d, ci["se"], n - 1, margin)
        out["margin_floor"] = margin_floor(test_level, n, alpha)
    tost_ci = verdict_interval(p, shared, 1 - 2 * alpha)
    equivalent = out["tost_p"] is not None and out["tost_p"] < alpha
    if ci["low"] > 0 or ci["high"] < 0:
        better, worse = (name_a, name_b) if d > 0 else (name_b, name_a)
        out["kind"] = "better" if d > 0 else "worse"
        # the p of the test whose interval is quoted (t on the verdict's SE, shared test-set part included); the
        # ordinary paired t-test leaves that part out, so its p is named as such, in a sentence of its own
        own = f"p={out['p']:.3g}" + (f", {out['p_adjusted']:.3g} Bonferroni-adjusted" if comparisons > 1 else "")
        out["text"] = (f"{better} beats {worse} on {metric} by {abs(d):.4f} ({interval}; that interval's test "
                       f"{own}, {n} pairs). The ordinary paired t-test, which leaves out the test-set noise shared by "
                       f"every pair, gives p={p['t_p']:.3g}.")
        if equivalent:  # a real but small difference: say that it is inside the margin too
            out["text"] += (f" The difference is also inside the declared margin ±{margin:g} ({tost_level} CI "
                            f"[{tost_ci['low']:+.4f}, {tost_ci['high']:+.4f}], TOST p={out['tost_p']:.3g}).")
    elif equivalent:
        # TOST at alpha is the (1 - 2 alpha) interval lying inside the margin: quote that one, so the interval
        # shown and the test agree (the 1 - alpha one may reach past the margin while TOST holds).
        out["kind"] = "equivalent"
        out["equivalence_ci"] = [tost_ci["low"], tost_ci["high"]]
        out["text"] = (f"{name_a} and {name_b} are equivalent on {metric} within the declared margin +-{margin:g}: "
                       f"difference {d:+.4f}, {tost_level} CI [{tost_ci['low']:+.4f}, {tost_ci['high']:+.4f}] "
                       f"inside the margin (TOST p={out['tost_p']:.3g}, {n} pairs; {interval}).")
    else:
        out["kind"] = "inconclusive"
        det = out["detectable"]
        high = f"{det['high']:.4f}" if det["high"] < 1 else "past any difference a score can have"
        detect = (f"with {n} pairs a true difference of ±{det['value']:.4f} would be detected with "
                  f"{POWER:.0%} probability ({det['low']:.4f} to {high} over the 95% interval of the SD of the "
                  "differences); smaller ones less often")
        out["text"] = (f"No difference detected on {metric}: {name_a} - {name_b} = {d:+.4f}, {interval}. This is not "
                       f"evidence of no difference: {detect}.")
    if margin is not None and test_level and not equivalent:
        note = _margin_note(test_level, n, margin, test_level.get("n_test", 0), alpha)
        if note:
            out["notes"].append(note)
            out["text"] += " " + note
    return out


def ranking(comparisons: dict, reference: str) -> list[RankingRow]:
    """Every method against the reference, best first: its difference, interval and p-values at the family-wise
    level (Bonferroni over the comparisons, as each verdict is made), and what that verdict says."""
    rows = [{"method": reference, "diff_mean": 0.0, "ci_low": None, "ci_high": None, "p": None, "p_adjusted": None,
             "kind": "reference", "n_pairs": None}]
    for c in comparisons.values():
        v = c["primary"]["verdict"]
        rows.append({"method": c["a"], "diff_mean": c["primary"]["diff_mean"], "ci_low": v["ci_low"],
                     "ci_high": v["ci_high"], "p": v.get("p"), "p_adjusted": v.get("p_adjusted"), "kind": v["kind"],
                     "n_pairs": c["primary"]["n_pairs"], "confidence": v.get("confidence")})
    return sorted(rows, key=lambda r: -(r["diff_mean"] if r["diff_mean"] is not None else float("-inf")))
