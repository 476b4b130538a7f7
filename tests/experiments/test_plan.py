"""`finetune-compare plan --pilot DIR`: pairs needed for a declared effect or margin, from a finished comparison."""

import re

import numpy as np

from finetune_compare.analysis.aggregate import write_comparison
from finetune_compare.analysis.planning import pairs_for_equivalence, pairs_needed, sd_interval
from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment
from finetune_compare.analysis.verdict import shared_test_variance, shared_variance_band
from finetune_compare.cli import main


def _pilot(tmp_path, n_pairs=5):
    y, source, preds = simulate_predictions(SCENARIOS["seed-noise"], np.random.default_rng(0), n_pairs, 0.0, 900)
    folder = write_experiment(tmp_path / "pilot", y, source, preds)
    return folder, write_comparison(folder, supporting_evidence=False)


def test_plan_from_a_pilot_gives_pairs_with_the_sds_range(tmp_path, capsys):
    folder, cmp = _pilot(tmp_path)
    assert main(["plan", "--pilot", str(folder), "--effect", "0.02"]) == 0
    out = capsys.readouterr().out
    p = cmp["comparisons"]["lora_vs_full"]["primary"]
    shared = shared_test_variance(p["test_level"], 5)
    c_low = shared_variance_band(p["test_level"], 5)[0]  # the fewest pairs: low SD and low c
    lo, hi = sd_interval(p["diff_sd"], 5)
    n, n_lo = pairs_needed(0.02, p["diff_sd"], shared), pairs_needed(0.02, lo, c_low)
    assert f"SD of the paired differences {p['diff_sd']:.4f} (95% interval {lo:.4f} to {hi:.4f})" in out
    assert re.search(rf"detect a true difference of ±0.02 with 80% probability: {n:,} pairs \({n_lo:,} to ", out)
    # the pilot's declared margin (0.01) is planned too
    m = pairs_for_equivalence(0.01, p["diff_sd"], shared)
    assert (f"equivalence within ±0.01 with 80% probability when there is no true difference: "
            f"{m:,} pairs" if m else "more than 10,000") in out


def test_plan_refuses_what_it_cannot_use(tmp_path, capsys):
    assert main(["plan", "--pilot", str(tmp_path / "nothing"), "--effect", "0.01"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plan", "--pilot", str(tmp_path / "empty"), "--effect", "0.01"]) == 2
    assert "has no comparison.json; run `finetune-compare report --results" in capsys.readouterr().err
    folder, _ = _pilot(tmp_path)
    assert main(["plan", "--pilot", str(folder), "--effect", "2"]) == 2
    assert "--effect must be between 0 and 1" in capsys.readouterr().err


def test_plan_carries_the_shared_parts_monte_carlo_error(tmp_path, capsys):
    """The quickstart's 3 pairs (tests/fixtures/quickstart-fp32): c_hat is near the limit past which no number of
    pairs detects ±0.015, and its Monte Carlo band reaches past it: the plan says both, not a hard conclusion."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "quickstart"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "quickstart-fp32", folder)
    write_comparison(folder, supporting_evidence=False)
    assert main(["plan", "--pilot", str(folder), "--effect", "0.015"]) == 0
    out = capsys.readouterr().out
    value = r"\d\.\d\de-05"
    assert re.search(rf"shared test-set variance {value} \({value} to {value} within 3 Monte Carlo SEs\)", out)
    assert "or more over the SD's 95% interval and the shared part's Monte Carlo error, and possibly no number" in out
    assert main(["plan", "--pilot", str(folder), "--effect", "0.01"]) == 0  # past the limit over all of the band
    assert "no number of pairs: the part of test-set noise shared by all pairs is too large for it, over all of" in (
        capsys.readouterr().out)
