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
df = n - 1, the paired t-test's. A Welch-Satterthwaite df would treat c_hat as exactly known and raise the df; when
c_hat is small against SD^2/n that can make the interval narrower than the paired t-interval (so the rule would no
longer imply the paired t-test), when it is large the interval stays wider.

c_hat comes from the bootstrap, which draws until its Monte Carlo error is at most 5% of c_hat or 20,000 resamples
are drawn (analysis/statistics.py); what error remains is carried into the sentences that rest on c_hat alone (the
smallest margin a test set supports, how many pairs would reach it, "a larger test set is needed"): they are
computed over c_hat +- 3 Monte Carlo standard errors and give a range where that band changes them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .planning import POWER, detectable_difference, pairs_for_floor, sd_interval
from .statistics import ALPHA, CONFIDENCE, MIN_PAIRS, TEST_BOOTSTRAP_RESAMPLES, _t, holm
from .result_types import RankingRow, Verdict


def shared_test_variance(test_level: dict | None, n: int) -> float | None:
    """c_hat: the covariance of the pairs' test-sampling deviations (their shared test set), floored at 0."""
    if not test_level or n < 2:
        return None
    per_pair = sum(s["se"] ** 2 for s in test_level["per_seed"])
    return max(0.0, (n ** 2 * test_level["se_test"] ** 2 - per_pair) / (n * (n - 1)))


MC_BAND = 3  # c_hat +- 3 Monte Carlo SEs: the sentences resting on c_hat hold for any bootstrap seed


def shared_variance_mc_se(test_level: dict, n: int) -> float:
    """c_hat's Monte Carlo standard error: the bootstrap's own (stored with its draws), or for a comparison.json written
    before it was stored, the normal-theory value 2 tr(A S A S) / (B - 1) of a linear function tr(A S) of a sample
    covariance S of B draws, with S taken as the per-pair variances on the diagonal and c_hat off it."""
    if test_level.get("shared_variance_mc_se") is not None:
        return float(test_level["shared_variance_mc_se"])
    c = shared_test_variance(test_level, n) or 0.0
    variances = np.array([s["se"] ** 2 for s in test_level["per_seed"]])
    sigma = np.full((n, n), c) + np.diag(variances - c)
    a = (np.ones((n, n)) - np.eye(n)) / (n * (n - 1))
    product = a @ sigma
    draws = test_level.get("n_resamples", TEST_BOOTSTRAP_RESAMPLES)  # the fixed count before it drew adaptively
    return float(math.sqrt(max(0.0, 2 * np.trace(product @ product) / (draws - 1))))


def shared_variance_band(test_level: dict | None, n: int) -> tuple[float, float] | None:
    """c_hat -+ MC_BAND Monte Carlo standard errors (floored at 0): the values c_hat could have taken with another
    bootstrap seed."""
    c = shared_test_variance(test_level, n)
    if c is None:
        return None
    error = MC_BAND * shared_variance_mc_se(test_level, n)
    return max(0.0, c - error), c + error


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


def margin_floor(test_level: dict | None, n: int, alpha: float = ALPHA, shared: float | None = None) -> float | None:
    """The half-width the 90% interval (TOST's) is expected to have on this test set at n pairs even with no seed
    noise at all: t(0.95, n-1) * sqrt(mean(v)/n + c_hat) (or with `shared` in place of c_hat). An estimate, not a
    bound: a margin below it is not expected to be shown."""
    v = per_pair_test_variance(test_level)
    c = shared if shared is not None else shared_test_variance(test_level, n)
    if v is None or c is None:
        return None
    return _t(1 - alpha, n - 1) * math.sqrt(v / n + c)


def _pairs_for_margin(test_level: dict, n: int, margin: float, band: tuple[float, float]) -> str:
    """How many pairs would bring the expected floor under the margin, over c_hat's Monte Carlo `band`: one number,
    a range, or none; the sentence says which holds for every value in the band."""
    v = per_pair_test_variance(test_level)
    c_low, c_high = band
    fewest, most = pairs_for_floor(v, c_low, margin), pairs_for_floor(v, c_high, margin)
    band = (f"c_hat {shared_test_variance(test_level, n):.2e}, {c_low:.2e} to {c_high:.2e} within {MC_BAND} Monte "
            "Carlo SEs")
    if fewest is None:
        return (f"no number of pairs would bring it under ±{margin:g} (the part shared through the one test set is "
                f"too large, over all of its estimate's Monte Carlo error: {band}): a larger test set is needed")
    if most is None:
        return (f"about {fewest} pairs or more might bring it under ±{margin:g}, or no number would (the part shared "
                f"through the one test set is too close to that limit to say: {band}); a larger test set is the sure "
                "way")
    if fewest == most:
        return f"about {fewest} pairs would bring it under ±{margin:g} (seed noise not counted)"
    return (f"about {fewest} to {most} pairs would bring it under ±{margin:g} (the range covers the Monte Carlo error "
            f"of the part shared through the one test set, {band}; seed noise not counted)")


def _margin_note(test_level: dict, n: int, margin: float, n_test: int, alpha: float = ALPHA) -> str | None:
    floor = margin_floor(test_level, n, alpha)
    if floor is None:
        return None
    band = shared_variance_band(test_level, n)
    if margin_floor(test_level, n, alpha, band[0]) < margin:  # said only when it holds at the band's low end too
        return None
    return (f"The declared margin ±{margin:g} cannot be shown with {n} pairs on these {n_test:,} test examples: "
            f"test-set sampling noise alone is expected to keep the {confidence_label(1 - 2 * alpha)} interval about "
            f"±{floor:.4f} wide (an estimate from the test-set bootstrap, not a bound), so this test set supports no "
            f"smaller margin at {n} pairs; {_pairs_for_margin(test_level, n, margin, band)}.")


def decide(name_a: str, name_b: str, metric: str, p: dict, test_level: dict | None = None,
           margin: float | None = None, comparisons: int = 1, family: dict | None = None) -> Verdict:
    """The verdict on the primary metric; its wording follows from the interval and the tests.

    With several methods compared against one reference (`comparisons` > 1), the claims of a difference are
    Holm-corrected over the family: `family` (from `holm_family`) gives the level this comparison's Holm step
    tested it at, and its interval is at 1 - that level, so a claim and its interval always agree. Without `family`,
    every claim is made at alpha / comparisons (Bonferroni). Equivalence (TOST) is always made at alpha /
    comparisons (Bonferroni), its interval at 1 - 2 alpha / comparisons."""
    n, d = p["n_pairs"], p["diff_mean"]
    equivalence_alpha = ALPHA / comparisons
    alpha = family["alpha"] if family else equivalence_alpha
    correction = None if comparisons == 1 else "holm" if family else "bonferroni"
    conf, tost_level = confidence_label(1 - alpha), confidence_label(1 - 2 * equivalence_alpha)
    out = {"kind": "too_few", "n_pairs": n, "df": None, "equivalence_margin": margin, "comparisons": comparisons,
           "alpha": alpha, "confidence": 1 - alpha, "p": None, "p_adjusted": None,
           "se_test": test_level["se_test"] if test_level else None, "shared_test_variance": None,
           "ci_low": None, "ci_high": None, "se": None, "tost_p": None, "detectable": None, "margin_floor": None,
           "notes": []}
    if comparisons > 1:  # (a verdict of one comparison writes what it always wrote)
        out.update(correction=correction, equivalence_alpha=equivalence_alpha)
    if n < MIN_PAIRS:
        out["text"] = (f"Too few paired runs to conclude ({n}; need >= {MIN_PAIRS}, 5+ recommended): "
                       + (f"{name_a} - {name_b} = {d:+.4f} {metric} is not evidence either way." if n else
                          "nothing to compare."))
        return out
    shared = shared_test_variance(test_level, n)
    ci = verdict_interval(p, shared, 1 - alpha)
    out.update(ci_low=ci["low"], ci_high=ci["high"], se=ci["se"], df=ci["df"], shared_test_variance=shared)
    out["p"] = verdict_p(d, ci["se"], n - 1)
    if out["p"] is not None:
        out["p_adjusted"] = family["p_adjusted"] if family else min(1.0, out["p"] * comparisons)
    sd_low, sd_high = sd_interval(p["diff_sd"], n)
    out["detectable"] = {"power": POWER, "value": detectable_difference(p["diff_sd"], n, shared, alpha=alpha),
                         "low": detectable_difference(sd_low, n, shared, alpha=alpha),
                         "high": detectable_difference(sd_high, n, shared, alpha=alpha)}
    covers = ("seed, data-draw and test-set noise" if test_level is not None else
              "seed and data-draw noise only (no predictions found: the shared test-set part is not included)")
    corrected = ("" if correction is None else f", Bonferroni-corrected for {comparisons} comparisons"
                 if correction == "bonferroni" else f", Holm-corrected over {comparisons} comparisons (the level of "
                 f"its Holm step, {ALPHA:g}/{round(ALPHA / alpha)})")
    interval = f"{conf} CI [{ci['low']:+.4f}, {ci['high']:+.4f}] over {covers}, df {n - 1}{corrected}"
    if margin is not None:
        out["tost_p"] = tost_p(d, ci["se"], n - 1, margin)
        out["margin_floor"] = margin_floor(test_level, n, equivalence_alpha)
    tost_ci = verdict_interval(p, shared, 1 - 2 * equivalence_alpha)
    equivalent = out["tost_p"] is not None and out["tost_p"] < equivalence_alpha
    tost_named = "TOST p" + (f", Bonferroni-corrected for {comparisons} comparisons: compared with "
                             f"{equivalence_alpha:.3g}" if comparisons > 1 else "")
    if ci["low"] > 0 or ci["high"] < 0:
        better, worse = (name_a, name_b) if d > 0 else (name_b, name_a)
        out["kind"] = "better" if d > 0 else "worse"
        # the p of the test whose interval is quoted (t on the verdict's SE, shared test-set part included); the
        # ordinary paired t-test leaves that part out, so its p is named as such, in a sentence of its own
        own = f"p={out['p']:.3g}" + (f", {out['p_adjusted']:.3g} {correction.capitalize()}-adjusted"
                                     if comparisons > 1 else "")
        out["text"] = (f"{better} beats {worse} on {metric} by {abs(d):.4f} ({interval}; that interval's test "
                       f"{own}, {n} pairs). The ordinary paired t-test, which leaves out the test-set noise shared by "
                       f"every pair, gives p={p['t_p']:.3g}.")
        if equivalent:  # a real but small difference: say that it is inside the margin too
            out["text"] += (f" The difference is also inside the declared margin ±{margin:g} ({tost_level} CI "
                            f"[{tost_ci['low']:+.4f}, {tost_ci['high']:+.4f}], {tost_named}={out['tost_p']:.3g}).")
    elif equivalent:
        # TOST at alpha is the (1 - 2 alpha) interval lying inside the margin: quote that one, so the interval
        # shown and the test agree (the 1 - alpha one may reach past the margin while TOST holds).
        out["kind"] = "equivalent"
        out["equivalence_ci"] = [tost_ci["low"], tost_ci["high"]]
        out["text"] = (f"{name_a} and {name_b} are equivalent on {metric} within the declared margin +-{margin:g}: "
                       f"difference {d:+.4f}, {tost_level} CI [{tost_ci['low']:+.4f}, {tost_ci['high']:+.4f}] "
                       f"inside the margin ({tost_named}={out['tost_p']:.3g}, {n} pairs; {interval}).")
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
        note = _margin_note(test_level, n, margin, test_level.get("n_test", 0), equivalence_alpha)
        if note:
            out["notes"].append(note)
            out["text"] += " " + note
    return out


def holm_family(comparisons: dict) -> dict[str, dict]:
    """{comparison: {alpha, p_adjusted, step}} for the verdicts' family (every method against the reference).

    Holm's step-down: sorted by the verdict's p, step i tests at alpha / (m - i + 1) while every earlier step was
    rejected; the first that is not stops it, and every comparison from there is given that step's level. Each
    interval at 1 - its level then excludes 0 exactly when Holm claims a difference (a rejected step's p is below
    its level; from the stopping step on, every p is at or above the stopping level). The intervals are not
    simultaneous: their joint coverage is not claimed, only the family-wise error of the claims (5%)."""
    ps = {name: c["primary"]["verdict"].get("p") for name, c in comparisons.items()}
    tested = sorted((name for name, p in ps.items() if p is not None), key=lambda name: ps[name])
    m = len(tested)
    adjusted = holm(ps)
    out, stop = {}, None
    for i, name in enumerate(tested):
        level = ALPHA / (m - i)
        if stop is None and ps[name] >= level:
            stop = level
        out[name] = {"alpha": stop if stop is not None else level, "p_adjusted": adjusted[name], "step": i + 1}
    return out


def ranking(comparisons: dict, reference: str) -> list[RankingRow]:
    """Every method against the reference, best first: its difference, interval and p-values at the family-wise
    level (Holm over the comparisons, as each verdict is made), and what that verdict says."""
    rows = [{"method": reference, "diff_mean": 0.0, "ci_low": None, "ci_high": None, "p": None, "p_adjusted": None,
             "kind": "reference", "n_pairs": None}]
    for c in comparisons.values():
        v = c["primary"]["verdict"]
        rows.append({"method": c["a"], "diff_mean": c["primary"]["diff_mean"], "ci_low": v["ci_low"],
                     "ci_high": v["ci_high"], "p": v.get("p"), "p_adjusted": v.get("p_adjusted"), "kind": v["kind"],
                     "n_pairs": c["primary"]["n_pairs"], "confidence": v.get("confidence")})
    return sorted(rows, key=lambda r: -(r["diff_mean"] if r["diff_mean"] is not None else float("-inf")))
