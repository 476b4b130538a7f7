"""comparison.csv and comparison.tex name a method whose every run failed, and say '1 paired seed' in the singular."""

import numpy as np
import pandas as pd

from finetune_compare.analysis.aggregate import build_comparison
from finetune_compare.analysis.exports import write_exports
from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment


def test_a_method_whose_only_run_failed_is_named_in_both_exports(tmp_path):
    y, source, preds = simulate_predictions(SCENARIOS["test-noise"], np.random.default_rng(0), 3, 0.0, 300)
    folder = write_experiment(tmp_path / "cmp", y, source, preds)
    cmp = build_comparison(folder, supporting_evidence=False)
    cmp["failed_runs"] = [{"method": "dora", "seed": 42, "error": "RuntimeError: boom", "attempts": 3}]
    paths = write_exports(folder, cmp)
    rows = pd.read_csv(paths["csv"])
    assert list(rows["status"]) == ["paired"] * 6 + ["failed: RuntimeError: boom"]
    assert rows.iloc[-1]["method"] == "dora" and pd.isna(rows.iloc[-1]["macro_f1"])
    tex = paths["tex"].read_text()
    assert "not in the table: dora (every run failed; comparison.csv lists the failures)" in tex
    assert "over 3 paired seeds; last rows: the verdict's difference" in tex
    single = {**cmp, "paired_seeds": [42], "comparisons": {}}
    tex = write_exports(folder, single)["tex"].read_text()
    assert "over 1 paired seed;" in tex and "last rows" not in tex
