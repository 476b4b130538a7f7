"""c_hat, the test-set variance shared by the pairs, is a small difference of large bootstrap variances. The sentences
that rest on it alone (the expected floor of the interval, how many pairs would bring it under the margin, "a larger
test set is needed") must not change with the bootstrap's seed. Checked on a real quickstart folder
(tests/fixtures/quickstart-fp32: the quickstart's 3 pairs on an AMD EPYC in fp32, predictions without texts), where
1,000 resamples printed "no number of pairs would ... a larger test set is needed" for some seeds and "about 21
pairs" for others."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from finetune_compare.analysis import test_evidence
from finetune_compare.analysis.aggregate import build_comparison
from finetune_compare.analysis.test_evidence import paired_runs_evidence
from finetune_compare.analysis.planning import pairs_for_floor
from finetune_compare.analysis.statistics import bootstrap_test_set, shared_variance_estimate
from finetune_compare.analysis.verdict import (per_pair_test_variance, shared_test_variance,
                                               shared_variance_mc_se)

QUICKSTART = Path(__file__).resolve().parents[1] / "fixtures" / "quickstart-fp32"
SEEDS = (42, 43, 44)
RUNS = {m: {s: QUICKSTART / "runs" / m / f"seed-{s}" for s in SEEDS} for m in ("lora", "full")}
PAIRS = re.compile(r"about (\d+) to (\d+) pairs would bring it under ±0\.01")
FLOOR = re.compile(r"^The declared margin ±0\.01 cannot be shown with 3 pairs on these 450 test examples: test-set "
                   r"sampling noise alone is expected to keep the 90% interval about ±(0\.\d{4}) wide")


def _note(folder: Path, seed: int) -> str:
    """The verdict's sentence on the margin, as `report` builds it, with the statistics' bootstrap seed `seed`."""
    cmp = build_comparison(folder, seed=seed, supporting_evidence=False)
    text = cmp["comparisons"]["lora_vs_full"]["primary"]["verdict"]["text"]
    return text[text.index("The declared margin"):]


@pytest.mark.slow
def test_the_margin_sentences_agree_over_20_bootstrap_seeds(tmp_path):
    folder = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, folder)
    # the well-determined answer: c_hat from 200,000 resamples, where its Monte Carlo error is ~1%
    many = _many_resamples(200_000)
    answer = pairs_for_floor(per_pair_test_variance(many), shared_test_variance(many, 3), 0.01)
    assert answer is not None
    notes = [_note(folder, seed) for seed in range(20)]
    floors = []
    for note in notes:
        assert "no number of pairs" not in note and "larger test set" not in note, note
        fewest, most = map(int, PAIRS.search(note).groups())
        assert fewest <= answer <= most, (answer, note)  # every seed's range holds the answer
        floors.append(float(FLOOR.search(note).group(1)))
    # the expected floor rests mostly on the per-pair test variance, well determined: it moves in the 3rd digit only
    assert max(floors) - min(floors) < 0.002, floors


def _many_resamples(n_boot: int) -> dict:
    """The quickstart's test-set evidence as the report path builds it, with `n_boot` resamples drawn."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_evidence, "bootstrap_test_set", functools.partial(bootstrap_test_set, n_boot=n_boot))
        return paired_runs_evidence(RUNS, "macro_f1", seed=7)


def test_c_hat_is_the_mean_off_diagonal_covariance_and_its_error_is_measured():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(5000, 1))
    diffs = 0.01 * (rng.normal(size=(5000, 4)) * 3 + shared)  # covariance 1e-4 between pairs, variance 1e-3
    value, error = shared_variance_estimate(diffs)
    cov = np.cov(diffs, rowvar=False)
    n = diffs.shape[1]
    assert value == pytest.approx((cov.sum() - np.trace(cov)) / (n * (n - 1)), rel=1e-9)
    assert value == pytest.approx(1e-4, abs=4 * error)
    # the error is the spread of independent estimates
    estimates = [shared_variance_estimate(0.01 * (rng.normal(size=(5000, 4)) * 3 + rng.normal(size=(5000, 1))))[0]
                 for _ in range(60)]
    assert np.std(estimates, ddof=1) == pytest.approx(error, rel=0.3)


def test_the_bootstrap_draws_until_c_hat_is_precise_and_older_files_get_the_normal_theory_error():
    evidence = paired_runs_evidence(RUNS, "macro_f1", seed=0)
    measured = evidence["shared_variance_mc_se"]
    # on this folder 1,000 resamples leave ~35% error: it draws to the cap, and says so
    assert evidence["n_resamples"] == 20_000
    assert measured < 0.1 * shared_test_variance(evidence, 3)
    # a comparison.json written before the error was stored: the normal-theory value, close to the measured one
    older = {**evidence, "shared_variance_mc_se": None}
    assert shared_variance_mc_se(older, 3) == pytest.approx(measured, rel=0.15)
