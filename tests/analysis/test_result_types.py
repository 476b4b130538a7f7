"""The result types hold what analysis writes: the stored comparisons and sweep, and a comparison built now."""

import json
from pathlib import Path

from finetune_compare.analysis.result_types import ComparisonResult, SweepSummary, Verdict, missing_or_unknown

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_the_stored_comparisons_and_sweep_have_the_declared_keys():
    comparisons = [RESULTS / "quickstart" / "comparison.json",
                   *sorted((RESULTS / "minilm-size-sweep" / "points").glob("*/comparison.json"))]
    assert len(comparisons) == 4
    for path in comparisons:
        assert missing_or_unknown(json.loads(path.read_text(encoding="utf-8")), ComparisonResult) == [], path
    sweep = json.loads((RESULTS / "minilm-size-sweep" / "sweep.json").read_text(encoding="utf-8"))
    assert missing_or_unknown(sweep, SweepSummary) == []


def test_a_comparison_built_now_has_the_declared_keys(tmp_path):
    import numpy as np

    from finetune_compare.analysis.aggregate import write_comparison
    from finetune_compare.analysis.simulation import write_experiment

    rng = np.random.default_rng(0)
    y, source = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    preds = {m: [np.where(rng.random(60) < 0.7, y, rng.integers(0, 3, 60)) for _ in range(3)] for m in ("full", "lora")}
    cmp = write_comparison(write_experiment(tmp_path / "exp", y, source, preds), supporting_evidence=False)
    assert missing_or_unknown(cmp, ComparisonResult) == []


def test_a_key_that_is_not_declared_is_found():
    verdict = json.loads((RESULTS / "quickstart" / "comparison.json").read_text(encoding="utf-8"))
    verdict = verdict["comparisons"]["lora_vs_full"]["primary"]["verdict"]
    assert missing_or_unknown(verdict, Verdict) == []
    assert missing_or_unknown({**verdict, "extra": 1}, Verdict) == ["extra: not declared"]
    assert missing_or_unknown({k: v for k, v in verdict.items() if k != "text"}, Verdict) == ["text: missing"]
