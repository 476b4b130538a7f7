"""What a user sees is true: the same pairs everywhere, bounded intervals, a headline, exports, several methods."""

import json

import numpy as np
import pandas as pd
import pytest

from finetune_compare.analysis.aggregate import build_comparison, write_comparison
from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment
from finetune_compare.cli import main


def _folder(tmp_path, n_pairs=3, methods=("full", "lora"), n_test=300, seed=0, name="cmp"):
    more = {m: 0.3 for m in methods[2:]}  # a third method, clearly better, on the same test set
    y, source, preds = simulate_predictions(SCENARIOS["test-noise"], np.random.default_rng(seed), n_pairs, 0.0,
                                            n_test, more)
    return write_experiment(tmp_path / name, y, source, {m: preds[m] for m in methods})


def _collapse(folder, method, seed):
    """Make one run predict a single class (as a diverged run does)."""
    path = folder / "runs" / method / f"seed-{seed}" / "metrics.json"
    m = json.loads(path.read_text())
    m["test"]["confusion_matrix"] = [[10, 0, 0], [10, 0, 0], [10, 0, 0]]
    m["test"]["macro_f1"] = 0.1667
    path.write_text(json.dumps(m))


def test_tables_plots_and_verdict_use_the_same_pairs(tmp_path):
    """A collapsed run leaves out its partner too: the table's means are over the verdict's pairs."""
    folder = _folder(tmp_path)
    _collapse(folder, "full", 43)
    cmp = build_comparison(folder, supporting_evidence=False)
    prim = cmp["comparisons"]["lora_vs_full"]["primary"]
    assert prim["seeds"] == [42, 44] == cmp["paired_seeds"] and cmp["n_runs"] == {"full": 2, "lora": 2}
    for m in ("full", "lora"):
        assert cmp["per_method"][m]["macro_f1"]["n"] == 2
    assert cmp["per_method"]["lora"]["macro_f1"]["mean"] - cmp["per_method"]["full"]["macro_f1"]["mean"] == \
        pytest.approx(prim["diff_mean"])
    assert {"method": "lora", "seed": 43, "reason": "unpaired: full collapsed at this seed"} in cmp["excluded_runs"]


def test_a_bounded_metrics_interval_stays_within_its_bounds(tmp_path):
    folder = _folder(tmp_path, n_pairs=2)
    cmp = build_comparison(folder, supporting_evidence=False)
    for m in ("full", "lora"):
        for stats in cmp["per_method"][m].values():
            assert 0 <= stats["ci_low"] <= stats["ci_high"] <= 1
    assert any(s["ci_clipped"] for s in cmp["per_method"]["full"].values())  # 2 runs: t(1) = 12.7 reaches past


@pytest.mark.slow
def test_the_verdict_starts_with_a_headline_and_exports_beside_the_report(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["report", "--results", str(folder)]) == 0
    out = capsys.readouterr().out
    verdict = out.split("Verdict\n")[1].splitlines()
    assert verdict[0].strip().startswith("No difference detected on this data and budget: lora - full = ")
    assert "with 0.33% of the parameters (not evidence of no difference)" in verdict[0]
    md = (folder / "report.md").read_text()
    assert md.split("## Verdict")[1].lstrip().startswith("**No difference detected")
    rows = pd.read_csv(folder / "comparison.csv")
    cmp = json.loads((folder / "comparison.json").read_text())
    assert list(rows["method"]) == ["full"] * 3 + ["lora"] * 3 and list(rows["seed"]) == [42, 43, 44] * 2
    lora = rows[rows["method"] == "lora"]["macro_f1"].to_numpy()
    full = rows[rows["method"] == "full"]["macro_f1"].to_numpy()
    assert np.allclose(lora - full, cmp["comparisons"]["lora_vs_full"]["primary"]["diffs"])
    tex = (folder / "comparison.tex").read_text()
    v = cmp["comparisons"]["lora_vs_full"]["primary"]["verdict"]
    assert "\\begin{tabular}" in tex and f"[{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" in tex and "inconclusive" in tex
    assert "macro\\_f1" not in tex  # cells are escaped


def test_budgets_stand_beside_the_cost_ratios(tmp_path):
    folder = _folder(tmp_path)
    cmp = build_comparison(folder, supporting_evidence=False)
    assert "with budgets of 3 epochs, 90 steps (lora) and 3 epochs, 90 steps (full): training time 1.00x" in \
        cmp["headline"][0]
    assert "training memory (peak RSS above each run's start)" in cmp["headline"][0]


@pytest.mark.slow
def test_several_methods_are_ranked_against_the_reference_with_holm(tmp_path):
    folder = _folder(tmp_path, n_pairs=5, methods=("full", "lora", "ia3"))
    assert main(["report", "--results", str(folder)]) == 0
    cmp = json.loads((folder / "comparison.json").read_text())
    assert [r["method"] for r in cmp["ranking"]][0] == "ia3" and len(cmp["ranking"]) == 3
    ps = sorted((c["primary"]["verdict"]["p"], name) for name, c in cmp["comparisons"].items())
    for step, (p, name) in enumerate(ps, 1):
        v = cmp["comparisons"][name]["primary"]["verdict"]
        assert v["comparisons"] == 2 and v["correction"] == "holm"
        # Holm-adjusted p: the running maximum of (m - i + 1) p over the steps so far
        assert v["p_adjusted"] == pytest.approx(min(1, max((2 - i + 1) * q for i, (q, _) in enumerate(ps[:step], 1))))
        assert "Holm-corrected over 2 comparisons" in v["text"]
        # the interval and the claim agree: it excludes 0 exactly when the Holm-adjusted p is below 0.05
        assert (v["ci_low"] > 0 or v["ci_high"] < 0) == (v["p_adjusted"] < 0.05)
        assert v["equivalence_alpha"] == pytest.approx(0.025)  # TOST stays Bonferroni-corrected
    ia3 = cmp["comparisons"]["ia3_vs_full"]["primary"]["verdict"]
    assert ia3["kind"] == "better" and ia3["confidence"] == pytest.approx(0.975)  # the first step: 0.05/2
    md = (folder / "report.md").read_text()
    assert "**Ranking against the reference**" in md and "Holm-corrected over these 2 comparisons" in md
    # three methods: which could be the best, and the Pareto front, in comparison.json, the report and a plot
    best = cmp["possibly_best"]["methods"]
    assert best["ia3"]["in_set"] and not best["full"]["in_set"] and not best["lora"]["in_set"]
    assert "**Cannot be told apart from the best**" in md and "**Quality against cost (Pareto)**" in md
    assert (folder / cmp["plots"]["pareto"]).is_file()
    front = cmp["pareto"]["trainable_params"]["methods"]
    assert front["ia3"]["on_front"] and not front["full"]["on_front"]


def test_holm_steps_give_each_interval_the_level_that_decided_it():
    """Holm stops at its first step that is not rejected; every later comparison gets that step's level, so a
    later p below its own step's level (0.024 < 0.05/2 here) claims nothing and its interval holds 0."""
    from finetune_compare.analysis.verdict import holm_family

    comparisons = {name: {"primary": {"verdict": {"p": p}}} for name, p in
                   (("a", 0.001), ("b", 0.02), ("c", 0.024), ("d", 0.9))}
    family = holm_family(comparisons)
    assert family["a"]["alpha"] == pytest.approx(0.05 / 4)  # rejected at step 1
    assert family["b"]["alpha"] == pytest.approx(0.05 / 3)  # 0.02 >= 0.0167: Holm stops here
    assert family["c"]["alpha"] == family["d"]["alpha"] == pytest.approx(0.05 / 3)
    for name, f in family.items():
        p = comparisons[name]["primary"]["verdict"]["p"]
        assert (p < f["alpha"]) == (f["p_adjusted"] < 0.05), name


@pytest.mark.slow
def test_runs_still_improving_at_the_end_are_named(tmp_path):
    folder = _folder(tmp_path)
    for seed in (42, 43, 44):
        path = folder / "runs" / "lora" / f"seed-{seed}" / "metrics.json"
        m = json.loads(path.read_text())
        m["validation"]["best_step"] = m["training"]["steps"]
        path.write_text(json.dumps(m))
    cmp = write_comparison(folder, supporting_evidence=False)
    assert cmp["efficiency"]["lora"]["best_at_last_evaluation"] == 3
    assert main(["report", "--results", str(folder)]) == 0
    assert ("Not converged: lora: 3 of 3 run(s) scored best on validation at their last evaluation"
            in (folder / "report.md").read_text())


def test_the_reference_setting_the_runs_recorded_decides_what_is_compared_with_what(tmp_path):
    """`reference: lora` (recorded in each run's config.yaml): every other method against lora, and lora first."""
    import yaml

    folder = _folder(tmp_path, methods=("full", "lora", "dora"))
    for path in folder.glob("runs/*/seed-*/config.yaml"):
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "reference": "lora"}))
    cmp = build_comparison(folder, supporting_evidence=False)
    assert cmp["reference"] == "lora" and cmp["methods"][0] == "lora"
    assert sorted(cmp["comparisons"]) == ["dora_vs_lora", "full_vs_lora"]
    # a folder written before the setting existed: full, as before
    for path in folder.glob("runs/*/seed-*/config.yaml"):
        path.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(path.read_text()).items() if k != "reference"}))
    assert sorted(build_comparison(folder, supporting_evidence=False)["comparisons"]) == ["dora_vs_full",
                                                                                         "lora_vs_full"]


def test_a_reference_outside_the_methods_is_one_config_error():
    from finetune_compare import Config, ConfigError

    with pytest.raises(ConfigError, match="config key 'reference': 'full' is not one of methods \\(lora, dora\\)"):
        Config(methods=["lora", "dora"])
    with pytest.raises(ConfigError) as err:  # named as itself, not through the overrides checked beside it
        Config(methods=["lora", "dora"], method_overrides={"lora": {"lora_r": 4}})
    assert str(err.value).startswith("config key 'reference': 'full' is not one of methods")
    assert Config(methods=["lora", "dora"], reference="lora").reference == "lora"
