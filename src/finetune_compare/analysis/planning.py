"""Planning, not post-hoc power: how many pairs detect a declared effect, or show a declared margin.

The variance model is the verdict's (analysis/verdict.py): the mean of n paired differences has variance
sigma^2 / n + c, with sigma^2 the variance of one pair's difference (seed, data draw and that pair's test noise)
and c the part shared through the one test set. A finished comparison used as a pilot gives both: SD^2 and c_hat.
The SD from a few pairs is itself uncertain (at 5 pairs its 95% interval spans about 0.6x to 2.9x), so every
answer comes with the range its 95% interval gives.

Power of the verdict's test (two-sided, alpha 0.05, df n - 1) for a true difference delta: the noncentral t with
noncentrality delta / sqrt(sigma^2/n + c) (exact when c = 0). Power to show equivalence within +-m at a true
difference of 0 (TOST at alpha 0.05): 2 F_t(m / se - t(0.95, n-1)) - 1, the usual approximation that treats the
estimated SE as fixed.
"""

from __future__ import annotations

import math

from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.80
MAX_PAIRS = 10_000


def sd_interval(sd: float | None, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The chi-square interval of a normal SD estimated from n values."""
    if sd is None or n < 2:
        return None, None
    df = n - 1
    q = (1 - confidence) / 2
    return (sd * math.sqrt(df / stats.chi2.ppf(1 - q, df)), sd * math.sqrt(df / stats.chi2.ppf(q, df)))


def _se(sd: float, n: int, shared: float | None) -> float:
    return math.sqrt(sd ** 2 / n + (shared or 0.0))


def power(delta: float, sd: float, n: int, shared: float | None = None, alpha: float = ALPHA) -> float:
    """Probability that the verdict's interval excludes 0 when the true difference is `delta`."""
    if n < 2:
        return 0.0
    df, se = n - 1, _se(sd, n, shared)
    if se == 0:
        return 1.0 if delta else alpha
    crit, ncp = stats.t.ppf(1 - alpha / 2, df), abs(delta) / se
    value = float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))
    return 1.0 if math.isnan(value) else min(value, 1.0)  # scipy's nct gives NaN far in the tail


def equivalence_power(margin: float, sd: float, n: int, shared: float | None = None, alpha: float = ALPHA) -> float:
    """Probability that TOST shows equivalence within +-margin when the true difference is 0."""
    if n < 2:
        return 0.0
    df, se = n - 1, _se(sd, n, shared)
    if se == 0:
        return 1.0
    return max(0.0, float(2 * stats.t.cdf(margin / se - stats.t.ppf(1 - alpha, df), df) - 1))


def detectable_difference(sd: float | None, n: int, shared: float | None = None, target: float = POWER,
                          alpha: float = ALPHA) -> float | None:
    """The true difference detected with probability `target` at n pairs (smaller ones are detected less often)."""
    if sd is None or n < 2:
        return None
    se = _se(sd, n, shared)
    if se == 0:
        return 0.0
    return float(optimize.brentq(lambda d: power(d, sd, n, shared, alpha) - target, 1e-12, 80 * se, xtol=1e-7))


def _smallest_n(ok, max_pairs: int = MAX_PAIRS) -> int | None:
    """The smallest n in [3, max_pairs] with ok(n) (ok is monotone in n), or None."""
    if not ok(max_pairs):
        return None
    lo, hi = 3, max_pairs
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def pairs_needed(effect: float, sd: float, shared: float | None = None, target: float = POWER) -> int | None:
    """Pairs that detect a true difference `effect` with probability `target`; None: not within MAX_PAIRS
    (`reachable` tells whether any number could)."""
    return _smallest_n(lambda n: power(effect, sd, n, shared) >= target)


def pairs_for_equivalence(margin: float, sd: float, shared: float | None = None, target: float = POWER) -> int | None:
    """Pairs that show equivalence within +-margin with probability `target` when there is no true difference."""
    return _smallest_n(lambda n: equivalence_power(margin, sd, n, shared) >= target)


def pairs_for_floor(per_pair_test_var: float | None, shared: float | None, margin: float) -> int | None:
    """Pairs at which test-set noise alone (no seed noise) no longer keeps the 90% interval wider than +-margin."""
    if per_pair_test_var is None or shared is None:
        return None
    return _smallest_n(lambda n: stats.t.ppf(1 - ALPHA, n - 1) * math.sqrt(per_pair_test_var / n + shared) < margin)


def reachable(effect: float, shared: float | None, target: float = POWER, equivalence: bool = False) -> bool:
    """Whether any number of pairs can reach `target`: as n grows the SE falls to sqrt(c), not to 0."""
    se = math.sqrt(shared or 0.0)
    if se == 0:
        return True
    z = stats.norm.ppf(1 - ALPHA) if equivalence else stats.norm.ppf(1 - ALPHA / 2)
    return (2 * stats.norm.cdf(effect / se - z) - 1 if equivalence else stats.norm.sf(z - effect / se)) > target


def plan(sd: float, n_pilot: int, shared: float | None, effect: float | None = None, margin: float | None = None,
         target: float = POWER, shared_band: tuple[float, float] | None = None) -> dict:
    """Pairs needed for a declared effect and/or margin, from a pilot's SD and its shared test-set variance. The
    range spans the SD's 95% interval and, with `shared_band` (c_hat's Monte Carlo band, analysis/verdict.py), the
    values c_hat could have taken with another bootstrap seed: fewest pairs at the low SD and low c, most at the high
    ends. `reachable`: whether some number of pairs can do it at the low end of the band (`reachable_at_high`: at its
    high end too)."""
    sd_low, sd_high = sd_interval(sd, n_pilot)
    c_low, c_high = shared_band if shared_band is not None else (shared, shared)
    banded = c_low != c_high  # the ranges also cover c_hat's Monte Carlo error
    out = {"pilot_pairs": n_pilot, "sd": sd, "sd_ci": [sd_low, sd_high], "shared_test_variance": shared,
           "shared_band": list(shared_band) if shared_band is not None else None, "power": target}
    if effect is not None:
        out["effect"] = {"effect": effect, "pairs": pairs_needed(effect, sd, shared, target), "banded": banded,
                         "reachable": reachable(effect, c_low, target),
                         "reachable_at_high": reachable(effect, c_high, target),
                         "pairs_range": [pairs_needed(effect, sd_low, c_low, target),
                                         pairs_needed(effect, sd_high, c_high, target)]}
    if margin is not None:
        out["margin"] = {"margin": margin, "pairs": pairs_for_equivalence(margin, sd, shared, target), "banded": banded,
                         "reachable": reachable(margin, c_low, target, equivalence=True),
                         "reachable_at_high": reachable(margin, c_high, target, equivalence=True),
                         "pairs_range": [pairs_for_equivalence(margin, sd_low, c_low, target),
                                         pairs_for_equivalence(margin, sd_high, c_high, target)]}
    return out
