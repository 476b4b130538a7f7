"""Statistics against values computed by hand, the review's regression cases, and simulations of the decision rule."""

import math

import numpy as np
import pytest
from scipy import stats

from finetune_compare.analysis.statistics import (bootstrap_test_set, combined_interval, decide, describe, holm, mcnemar_exact_p,
                                                  metric_from_predictions, minimum_detectable_effect, paired,
                                                  runs_needed, sign_flip_p, t_interval)
from finetune_compare.analysis.simulation import project_rule, simulate_rule
from finetune_compare.evaluation.metrics import classification_metrics


def _pairs(a, b):
    return paired(dict(enumerate(a)), dict(enumerate(b)))


# ---- hand-computed values ---------------------------------------------------------------

def test_t_interval_by_hand():
    # mean 0.82, sd 0.02, n 3: half-width = t(0.975, 2) * 0.02 / sqrt(3) = 4.302653 * 0.011547
    low, high = t_interval([0.80, 0.82, 0.84])
    assert high - 0.82 == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    assert 0.82 - low == pytest.approx(high - 0.82)


def test_describe_uses_t_below_ten_runs_and_bootstrap_from_ten():
    small = describe([0.80, 0.82, 0.84])
    assert small["ci_method"] == "t" and small["median"] == 0.82 and small["min"] == 0.80 and small["max"] == 0.84
    assert small["std"] == pytest.approx(0.02)
    big = describe(np.linspace(0.7, 0.8, 10))
    assert big["ci_method"] == "bootstrap (BCa)" and big["ci_low"] < 0.75 < big["ci_high"]
    assert describe([0.7])["ci_low"] is None and describe([0.7])["std"] is None


def test_paired_t_by_hand():
    diffs = np.array([0.010, 0.012, 0.008])
    p = _pairs([0.61, 0.622, 0.608], [0.60, 0.61, 0.60])
    t = diffs.mean() / (diffs.std(ddof=1) / math.sqrt(3))  # 0.010 / (0.002 / 1.732) = 8.660
    assert t == pytest.approx(8.660254, rel=1e-5)
    assert p["t_p"] == pytest.approx(2 * stats.t.sf(t, 2), rel=1e-6)  # 0.01307
    assert p["diff_mean"] == pytest.approx(0.010) and p["diff_sd"] == pytest.approx(0.002)
    assert p["sign_flip_p"] is None and "cannot reach p < 0.05" in p["sign_flip_note"]


def test_sign_flip_exact_from_six_pairs():
    # all six differences positive: only the all-positive and all-negative sign patterns are as extreme: 2/64
    assert sign_flip_p([0.01, 0.02, 0.015, 0.03, 0.01, 0.02]) == pytest.approx(2 / 64)
    assert sign_flip_p([0.01] * 5) is None


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.04 -> 3 x 0.01 = 0.03, max(0.03, 2 x 0.02) = 0.04, max(0.04, 1 x 0.04) = 0.04
    assert holm({"a": 0.04, "b": 0.01, "c": 0.02, "d": None}) == pytest.approx(
        {"a": 0.04, "b": 0.03, "c": 0.04, "d": None})


def test_mcnemar_exact_by_hand():
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([1, 1, 0, 0, 0, 0, 0, 1], bool)
    # discordant: A right & B wrong 4, B right & A wrong 1 -> binomial(5, 0.5) two-sided: 2 * P(X <= 1) = 0.375
    assert mcnemar_exact_p(a, b) == pytest.approx(0.375)


def test_metric_from_predictions_matches_the_run_metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 500)
    pred = np.where(rng.random(500) < 0.6, y, rng.integers(0, 3, 500))
    ref = classification_metrics(y, pred)
    for m in ("macro_f1", "accuracy", "macro_precision", "macro_recall"):
        assert metric_from_predictions(y, pred, m, np.unique(y)) == pytest.approx(ref[m], abs=1e-12)


def test_two_level_bootstrap_is_seeded_and_shares_the_test_draw():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    strata = [f"s{i % 2}-{label}" for i, label in enumerate(y)]
    preds = {k: {s: np.where(rng.random(300) < 0.7, y, rng.integers(0, 3, 300)) for s in (1, 2, 3)} for k in "ab"}
    r1 = bootstrap_test_set(y, preds["a"], preds["b"], strata, "macro_f1", n_boot=200, seed=5)
    r2 = bootstrap_test_set(y, preds["a"], preds["b"], strata, "macro_f1", n_boot=200, seed=5)
    assert r1 == r2
    assert len(r1["per_seed"]) == 3 and all(s["ci_low"] < s["diff"] < s["ci_high"] for s in r1["per_seed"])
    # with 300 examples a macro-F1 difference has a test-sampling SE of a few points
    assert 0.01 < r1["se_test"] < 0.06
    assert r1["two_level_ci_low"] < r1["two_level_ci_high"]


# ---- regression cases from the review ----------------------------------------------------

def test_steady_gain_on_three_seeds_is_a_claim():
    a = [0.610, 0.622, 0.608]
    b = [0.600, 0.611, 0.599]  # +0.010, +0.011, +0.009
    p = _pairs(a, b)
    assert p["t_p"] < 0.01
    v = decide("lora", "full", "macro_f1", p)
    assert v["kind"] == "better" and v["text"].startswith("lora beats full on macro_f1 by 0.0100")


def test_a_tie_on_one_seed_does_not_give_an_interval_excluding_zero():
    p = _pairs([0.9, 0.9, 0.9], [0.9033, 0.9650, 0.9000])  # differences -0.0033, -0.0650, 0.0000
    v = decide("lora", "full", "accuracy", p)
    assert v["ci_low"] < 0 < v["ci_high"] and v["kind"] == "inconclusive"
    assert "cannot be detected" in v["text"] and "within run-to-run noise" not in v["text"]


def test_too_few_pairs_is_one_line_without_a_claim():
    v = decide("lora", "full", "macro_f1", _pairs([0.6, 0.7], [0.5, 0.55]))
    assert v["kind"] == "too_few" and v["text"].startswith("Too few paired runs to conclude (2; need >= 3")


def test_equivalence_needs_a_margin_and_a_tight_interval():
    rng = np.random.default_rng(3)
    b = 0.6 + rng.normal(0, 0.004, 10)
    a = b + rng.normal(0, 0.002, 10)
    p = paired(dict(enumerate(a)), dict(enumerate(b)))
    assert decide("lora", "full", "macro_f1", p)["kind"] == "inconclusive"  # no margin declared: no claim
    v = decide("lora", "full", "macro_f1", p, margin=0.01)
    assert v["kind"] == "equivalent" and v["tost_p"] < 0.05 and "within the declared margin +-0.01" in v["text"]
    assert -0.01 < v["equivalence_ci"][0] < v["equivalence_ci"][1] < 0.01


def test_equivalence_quotes_the_interval_its_test_uses():
    # TOST p just under 0.05: the 90% interval lies inside +-0.01, the 95% one reaches past it
    p = _pairs([0.60, 0.61, 0.605, 0.612, 0.598], [0.601, 0.6085, 0.6062, 0.6135, 0.6008])
    for se_test in np.linspace(0.0005, 0.006, 200):
        v = decide("a", "b", "macro_f1", p, se_test, margin=0.01)
        if v["kind"] == "equivalent" and not (-0.01 < v["ci_low"] and v["ci_high"] < 0.01):
            break
    else:
        raise AssertionError("no case with TOST holding and the 95% interval past the margin")
    low, high = v["equivalence_ci"]
    assert -0.01 < low < high < 0.01
    assert f"90% CI [{low:+.4f}, {high:+.4f}] inside the margin" in v["text"]


def test_test_noise_widens_the_interval():
    p = _pairs([0.61, 0.622, 0.608], [0.60, 0.61, 0.60])
    seed_only, both = combined_interval(p, None), combined_interval(p, 0.01)
    assert both["high"] - both["low"] > seed_only["high"] - seed_only["low"]
    assert decide("lora", "full", "macro_f1", p, se_test=0.01)["kind"] == "inconclusive"
    assert minimum_detectable_effect(0.002, 3, 0.01) > minimum_detectable_effect(0.002, 3)
    # (t(0.975, n-1) + t(0.8, n-1)) * sd / sqrt(n) <= 0.01 first holds at n = 10 for sd 0.01
    assert runs_needed(0.01, 0.01) == 10 and runs_needed(0.01, 0.01, se_test=0.01) is None


# ---- simulations of the decision rule ------------------------------------------------------

REPS = 4000  # SE of a 5% rate: 0.34%; 5% and 10% are 14 SE apart


def _simulate(n_pairs: int, effect_sd: float, reps: int = REPS, seed: int = 0):
    """Paired scores with a shared per-pair component; paired-difference SD 1 unit (0.01)."""
    out = simulate_rule(project_rule, n_pairs, effect_sd, reps, seed)
    return out["claims"], out["coverage"]


@pytest.mark.parametrize("n_pairs", [3, 5, 10])
def test_no_true_difference_gives_at_most_five_percent_claims_and_covers(n_pairs):
    false_claims, coverage = _simulate(n_pairs, 0.0)
    assert false_claims <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / REPS)  # 5% + 3 SE = 6.0%
    assert coverage >= 0.93


def test_power_matches_the_paired_t_test():
    """A true effect of 1 SD of the paired differences.

    No test that estimates the SD from the runs and keeps false claims at 5% can reach 60% at 5 pairs:
    the paired t-test's power there is 0.40 (noncentral t, df 4, ncp sqrt(5)); 0.60 needs the SD known
    in advance. So: power at 5 pairs equals the t-test's, and at 10 pairs (0.80) the rule is reliable.
    """
    at5, cover5 = _simulate(5, 1.0, reps=2000, seed=1)
    expected5 = 1 - stats.nct.cdf(stats.t.ppf(0.975, 4), 4, math.sqrt(5))
    assert abs(at5 - expected5) < 0.035 and cover5 >= 0.93
    at10, _ = _simulate(10, 1.0, reps=2000, seed=2)
    assert at10 >= 0.75


def test_no_true_difference_with_test_sampling_noise():
    """Predictions on a shared test set: seed noise plus test noise; claims stay at ~5% or below."""
    rng = np.random.default_rng(7)
    n_test, reps, claims = 300, 150, 0
    for _ in range(reps):
        y = rng.integers(0, 3, n_test)
        difficulty = rng.random(n_test)  # shared by every model: the test-set effect
        preds = {}
        for name in "ab":
            preds[name] = {}
            for s in range(5):
                skill = 0.6 + rng.normal(0, 0.01)
                right = difficulty < skill + rng.normal(0, 0.05, n_test)
                preds[name][s] = np.where(right, y, (y + rng.integers(1, 3, n_test)) % 3)
        classes = np.unique(y)
        scores = {k: {s: metric_from_predictions(y, p, "macro_f1", classes) for s, p in v.items()}
                  for k, v in preds.items()}
        tl = bootstrap_test_set(y, preds["a"], preds["b"], y, "macro_f1", n_boot=100, seed=1)
        v = decide("a", "b", "macro_f1", paired(scores["a"], scores["b"]), se_test=tl["se_test"])
        claims += v["kind"] in ("better", "worse")
    assert claims / reps <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)
