"""Statistics on fixed inputs against values computed by hand."""

import math

import pytest
from scipy import stats

from finetune_compare.analysis.statistics import (aso_eps_min, bootstrap_ci, compare_paired, describe,
                                                  welch_p_value)


def test_describe_mean_std_ci():
    d = describe([0.80, 0.82, 0.84])
    assert d["mean"] == pytest.approx(0.82) and d["std"] == pytest.approx(0.02)
    assert 0.80 <= d["ci_low"] <= 0.82 <= d["ci_high"] <= 0.84 and d["ci_method"] == "BCa"
    single = describe([0.7])
    assert single["std"] is None and single["ci_low"] is None


def test_bootstrap_degenerate_and_seeded():
    assert bootstrap_ci([0.05, 0.05, 0.05]) == (0.05, 0.05, "degenerate")
    assert bootstrap_ci([0.1, 0.3, 0.2, 0.4], seed=1) == bootstrap_ci([0.1, 0.3, 0.2, 0.4], seed=1)


def test_welch_matches_hand_computation():
    a, b = [0.80, 0.82, 0.84], [0.70, 0.71, 0.75]
    # by hand: var_a = 0.0004, var_b = 0.0007, se^2 = 0.0011/3
    se2 = 0.0004 / 3 + 0.0007 / 3
    t = 0.10 / math.sqrt(se2)
    df = se2**2 / ((0.0004 / 3) ** 2 / 2 + (0.0007 / 3) ** 2 / 2)
    assert t == pytest.approx(5.2223, abs=1e-3) and df == pytest.approx(3.723, abs=1e-3)
    assert welch_p_value(a, b) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
    # Student's pooled-variance test would give a different p: the wrapper must be Welch's
    assert welch_p_value(a, b) != pytest.approx(stats.ttest_ind(a, b).pvalue, rel=1e-6)
    assert welch_p_value([0.5], [0.4, 0.6]) is None


def test_paired_difference_uses_seed_pairs():
    lora = {1: 0.80, 2: 0.82, 3: 0.84, 9: 0.99}  # seed 9 has no partner: ignored
    full = {1: 0.70, 2: 0.71, 3: 0.75}
    cmp = compare_paired(lora, full, "lora", "full", "macro_f1")
    assert cmp["seeds"] == [1, 2, 3] and cmp["n_pairs"] == 3
    assert cmp["diff_mean"] == pytest.approx((0.10 + 0.11 + 0.09) / 3)
    eps = 1e-9  # 0.84 - 0.75 is 0.0899999... in floating point
    assert 0.09 - eps <= cmp["diff_ci_low"] <= cmp["diff_mean"] <= cmp["diff_ci_high"] <= 0.11 + eps


def test_aso_direction():
    better, worse = [0.80, 0.82, 0.81, 0.83, 0.84], [0.70, 0.72, 0.71, 0.69, 0.73]
    assert aso_eps_min(better, worse) == pytest.approx(0.0, abs=0.01)
    assert aso_eps_min(worse, better) > 0.9
    assert aso_eps_min([0.5], [0.6, 0.7]) is None


def test_verdicts():
    few = compare_paired({1: 0.9, 2: 0.91}, {1: 0.8, 2: 0.81}, "lora", "full", "macro_f1")
    assert few["verdict"].startswith("Too few runs to conclude (2 paired runs")
    assert few["aso_eps_min"] is None
    clear = compare_paired({s: 0.80 + 0.01 * (s % 3) for s in range(5)}, {s: 0.70 + 0.01 * (s % 2) for s in range(5)},
                           "lora", "full", "macro_f1")
    assert clear["verdict"].startswith("lora beats full on macro_f1 by")
    assert clear["welch_p"] < 0.05 and clear["diff_ci_low"] > 0
    noise = compare_paired({0: 0.80, 1: 0.70, 2: 0.75, 3: 0.72}, {0: 0.74, 1: 0.76, 2: 0.73, 3: 0.75},
                           "lora", "full", "macro_f1")
    assert noise["verdict"].startswith("No reliable difference on macro_f1")
