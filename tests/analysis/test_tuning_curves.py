"""Expected validation performance: the estimator against its definition and by simulation."""

import itertools

import numpy as np
import pytest

from finetune_compare.analysis.tuning_curves import (curve_summary, curve_text, expected_max,
                                                     expected_validation_curve)


def test_expected_max_is_the_mean_over_every_draw_with_replacement():
    values = [0.61, 0.55, 0.70, 0.58]
    for n in (1, 2, 3):
        draws = [max(d) for d in itertools.product(values, repeat=n)]  # every draw of n, equally likely
        mean, sd = expected_max(values, n)
        assert mean == pytest.approx(np.mean(draws)) and sd == pytest.approx(np.std(draws))
    assert expected_max(values, 1)[0] == pytest.approx(np.mean(values))


def test_the_curve_rises_to_the_best_score_and_matches_a_simulation():
    rng = np.random.default_rng(0)
    values = rng.normal(0.6, 0.05, 20)
    curve = expected_validation_curve(values)
    means = [p["mean"] for p in curve]
    assert all(b >= a for a, b in zip(means, means[1:])) and means[-1] < values.max()
    simulated = rng.choice(values, size=(20000, 5)).max(axis=1)
    assert curve[4]["mean"] == pytest.approx(simulated.mean(), abs=0.002)
    assert curve[4]["sd"] == pytest.approx(simulated.std(), abs=0.002)


def test_the_summary_quotes_1_5_10_and_n_and_says_what_it_left_out():
    summary = curve_summary([0.5, 0.6, 0.7, 0.65, 0.55, 0.62], trials=8, pruned=2)
    assert [p["n"] for p in summary["at"]] == [1, 5, 6] and summary["complete_trials"] == 6
    text = curve_text("lora", "macro_f1", summary)
    assert text.startswith("lora: expected best validation macro_f1 after n trials (± SD) 1: 0.6033 ± ")
    assert "2 pruned trial(s) left out" in text
    assert curve_text("full", "macro_f1", curve_summary([], 3, 3)) == "full: no complete trial, no expected " \
                                                                      "validation curve"
