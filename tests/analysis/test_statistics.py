"""Statistics against values computed by hand, the review's regression cases, and simulations of the decision rule."""

import math

import numpy as np
import pytest
from scipy import stats

from finetune_compare.analysis.planning import detectable_difference, pairs_needed, power
from finetune_compare.analysis.statistics import (bootstrap_test_set, describe, holm, mcnemar_exact_p,
                                                  metric_from_predictions, paired, sign_flip_p, t_interval)
from finetune_compare.analysis.verdict import decide, margin_floor, shared_test_variance, verdict_interval
from finetune_compare.evaluation.metrics import classification_metrics


def _pairs(a, b):
    return paired(dict(enumerate(a)), dict(enumerate(b)))


# ---- hand-computed values ---------------------------------------------------------------

def test_t_interval_by_hand():
    # mean 0.82, sd 0.02, n 3: half-width = t(0.975, 2) * 0.02 / sqrt(3) = 4.302653 * 0.011547
    low, high = t_interval([0.80, 0.82, 0.84])
    assert high - 0.82 == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)
    assert 0.82 - low == pytest.approx(high - 0.82)


def test_describe_uses_the_t_interval_at_every_number_of_runs():
    small = describe([0.80, 0.82, 0.84])
    assert small["ci_method"] == "t" and small["median"] == 0.82 and small["min"] == 0.80 and small["max"] == 0.84
    assert small["std"] == pytest.approx(0.02)
    big = describe(np.linspace(0.7, 0.8, 12))  # where BCa covered 90.3% (issue 37): t at every n
    assert big["ci_method"] == "t" and (big["ci_low"], big["ci_high"]) == pytest.approx(t_interval(
        np.linspace(0.7, 0.8, 12)))
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
    assert v["df"] == 2


def test_a_tie_on_one_seed_does_not_give_an_interval_excluding_zero():
    p = _pairs([0.9, 0.9, 0.9], [0.9033, 0.9650, 0.9000])  # differences -0.0033, -0.0650, 0.0000
    v = decide("lora", "full", "accuracy", p)
    assert v["ci_low"] < 0 < v["ci_high"] and v["kind"] == "inconclusive"
    assert "No difference detected" in v["text"] and "within run-to-run noise" not in v["text"]


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


def _test_level(se_test: float, per_pair_se: list[float], n_test: int = 450) -> dict:
    return {"se_test": se_test, "n_test": n_test, "per_seed": [{"se": se} for se in per_pair_se]}


def test_equivalence_quotes_the_interval_its_test_uses():
    # TOST p just under 0.05: the 90% interval lies inside +-0.01, the 95% one reaches past it
    p = _pairs([0.60, 0.61, 0.605, 0.612, 0.598], [0.601, 0.6085, 0.6062, 0.6135, 0.6008])
    for shared_sd in np.linspace(0.0005, 0.006, 200):
        # a test level whose shared part is shared_sd^2 and whose per-pair part is small
        tl = _test_level(math.sqrt(shared_sd ** 2 * 4 / 5 + 0.0001 ** 2 / 5), [0.0001] * 5, n_test=100_000)
        v = decide("a", "b", "macro_f1", p, tl, margin=0.01)
        if v["kind"] == "equivalent" and not (-0.01 < v["ci_low"] and v["ci_high"] < 0.01):
            break
    else:
        raise AssertionError("no case with TOST holding and the 95% interval past the margin")
    low, high = v["equivalence_ci"]
    assert -0.01 < low < high < 0.01
    assert f"90% CI [{low:+.4f}, {high:+.4f}] inside the margin" in v["text"]


# ---- one variance, counted once ----------------------------------------------------------------

def test_shared_test_variance_by_hand():
    # n = 3, SE_test = 0.01, per-pair SEs 0.015: c = (9 * 1e-4 - 3 * 2.25e-4) / 6 = (9e-4 - 6.75e-4) / 6 = 3.75e-5
    assert shared_test_variance(_test_level(0.01, [0.015] * 3), 3) == pytest.approx(3.75e-5)
    # independent pairs (SE_test^2 = mean(se^2)/n): nothing shared; below that, floored at 0
    assert shared_test_variance(_test_level(0.015 / math.sqrt(3), [0.015] * 3), 3) == pytest.approx(0, abs=1e-15)
    assert shared_test_variance(_test_level(0.001, [0.015] * 3), 3) == 0.0


def test_interval_adds_only_the_shared_part_to_the_spread():
    p = _pairs([0.61, 0.622, 0.608], [0.60, 0.61, 0.60])  # diffs .010 .012 .008: SD 0.002
    tl = _test_level(0.01, [0.015] * 3)
    ci = verdict_interval(p, shared_test_variance(tl, 3))
    assert ci["se"] == pytest.approx(math.sqrt(0.002 ** 2 / 3 + 3.75e-5)) and ci["df"] == 2
    assert ci["high"] - 0.010 == pytest.approx(stats.t.ppf(0.975, 2) * ci["se"])
    # no shared part: exactly the paired t-interval, so "beats" is the paired t-test's claim
    alone = verdict_interval(p, 0.0)
    assert (alone["low"], alone["high"]) == pytest.approx((p["t_ci_low"], p["t_ci_high"]))
    v = decide("lora", "full", "macro_f1", p, _test_level(0.015 / math.sqrt(3), [0.015] * 3))
    assert v["kind"] == "better" and v["shared_test_variance"] == pytest.approx(0, abs=1e-15)
    assert decide("lora", "full", "macro_f1", p, tl)["kind"] == "inconclusive"  # a large shared part: no claim


def test_the_verdict_says_what_it_could_detect_and_that_it_is_not_evidence_of_no_difference():
    p = _pairs([0.9, 0.9, 0.9], [0.9033, 0.9650, 0.9000])
    v = decide("lora", "full", "accuracy", p)
    assert v["kind"] == "inconclusive" and v["text"].startswith("No difference detected on accuracy")
    assert "not evidence of no difference" in v["text"] and "detected with 80% probability" in v["text"]
    det = v["detectable"]
    assert det["low"] < det["value"] < det["high"]
    assert power(det["value"], p["diff_sd"], 3) == pytest.approx(0.80, abs=1e-6)
    assert "cannot be detected" not in v["text"]


def test_a_margin_the_test_set_cannot_support_is_named():
    # the quickstart's case: 450 test examples, 3 pairs, per-pair test SE ~0.025: the 90% interval is at least
    # t(0.95, 2) * sqrt(0.025^2 / 3) = 0.042 wide, so +-0.01 cannot be shown
    p = _pairs([0.44, 0.43, 0.45], [0.44, 0.44, 0.44])
    tl = {**_test_level(0.025 / math.sqrt(3), [0.025] * 3), "shared_variance_mc_se": 0.0}
    v = decide("lora", "full", "macro_f1", p, tl, margin=0.01)
    floor = margin_floor(tl, 3)
    assert floor == pytest.approx(stats.t.ppf(0.95, 2) * 0.025 / math.sqrt(3))
    assert "cannot be shown with 3 pairs on these 450 test examples" in v["text"]
    assert f"expected to keep the 90% interval about ±{floor:.4f} wide (an estimate" in v["text"]
    assert "about 19 pairs would bring it under ±0.01 (seed noise not counted)" in v["text"]  # c_hat = 0 exactly
    # a file written before the Monte Carlo error was stored: its normal-theory value (1,000 resamples) gives a range
    older = {**tl, "shared_variance_mc_se": None}
    assert "about 19 to 256 pairs would bring it under ±0.01" in decide("lora", "full", "macro_f1", p, older,
                                                                        margin=0.01)["text"]
    # a shared part larger than the margin: no number of pairs helps, over all of c_hat's Monte Carlo band
    tl = _test_level(0.02, [0.02] * 3)  # c = (9 * 4e-4 - 3 * 4e-4) / 6 = 4e-4: sqrt 0.02 > 0.01
    assert "a larger test set is needed" in decide("lora", "full", "macro_f1", p, tl, margin=0.01)["text"]
    # near the limit (c = 3.6e-5, where z sqrt(c) is 0.0099) with a Monte Carlo error that reaches past it: no
    # hard conclusion, a hedged one
    tl = {**_test_level(math.sqrt((3 * 0.02 ** 2 + 6 * 3.6e-5) / 9), [0.02] * 3), "shared_variance_mc_se": 1e-5}
    text = decide("lora", "full", "macro_f1", p, tl, margin=0.01)["text"]
    assert "pairs or more might bring it under ±0.01, or no number would" in text
    assert "c_hat 3.60e-05, 6.00e-06 to 6.60e-05 within 3 Monte Carlo SEs" in text and "is needed" not in text


def test_planning_by_hand():
    # known-SD normal approximation: n = ((z.975 + z.8) sd / effect)^2 = (2.8016 * 2)^2 = 31.4; the t-test needs a
    # little more
    n = pairs_needed(0.01, 0.02)
    assert 32 <= n <= 34 and power(0.01, 0.02, n) >= 0.8 > power(0.01, 0.02, n - 1)
    assert pairs_needed(0.01, 0.02, shared=0.006 ** 2) is None  # z * sqrt(c) alone is past the effect
    assert detectable_difference(0.02, n) <= 0.01 < detectable_difference(0.02, n - 1)


def test_the_headline_quotes_the_interval_its_equivalence_test_uses():
    from finetune_compare.analysis.aggregate import summary_line

    rng = np.random.default_rng(3)
    b = 0.6 + rng.normal(0, 0.004, 10)
    p = paired(dict(enumerate(b + rng.normal(0, 0.002, 10))), dict(enumerate(b)))
    eff = {"lora": {"trainable_ratio": 0.0033}}
    for comparisons, label in ((1, "90% CI"), (2, "95% CI"), (3, "96.7% CI")):
        v = decide("lora", "full", "macro_f1", p, margin=0.01, comparisons=comparisons)
        assert v["kind"] == "equivalent"
        line = summary_line({"a": "lora", "b": "full", "primary_metric": "macro_f1",
                             "primary": {"verdict": v, "diff_mean": p["diff_mean"]}}, eff)
        assert f"({label} [" in line and f"{label} [{v['equivalence_ci'][0]:+.4f}" in v["text"]
