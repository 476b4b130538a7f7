"""Every verdict sentence that quotes an interval quotes the p of the same test (issue 37): generated through the
report path (simulated run folders in, comparison.json out) in scenarios where a difference is and is not claimed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from finetune_compare.analysis.aggregate import write_comparison
from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment

ROOT = Path(__file__).resolve().parents[2]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.)])\s+(?=[A-Z])", text) if s]


@pytest.mark.parametrize("scenario, effect, seed, kind", [("test-noise", 0.0, 0, "inconclusive"),
                                                          ("test-noise", 0.3, 1, "better"),
                                                          ("seed-noise", 0.5, 2, "better"),
                                                          ("seed-noise", 0.0, 3, "inconclusive")])
def test_each_sentence_with_an_interval_quotes_that_intervals_p(tmp_path, scenario, effect, seed, kind):
    y, source, preds = simulate_predictions(SCENARIOS[scenario], np.random.default_rng(seed), 5, effect, 300)
    folder = write_experiment(tmp_path / "cmp", y, source, preds)
    cmp = write_comparison(folder, supporting_evidence=False)
    for c in cmp["comparisons"].values():
        v = c["primary"]["verdict"]
        assert v["kind"] == kind  # both a claimed and an unclaimed difference are read
        for sentence in _sentences(v["text"]):
            quoted = re.findall(r"\bp=([0-9]+(?:\.[0-9]+)?(?:e-[0-9]+)?)", sentence)
            if f"CI [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" in sentence:
                # the verdict's interval: only its own test's p may stand beside it
                assert all(q == f"{v['p']:.3g}" for q in quoted), sentence
            elif "paired t-test" in sentence:
                assert quoted == [f"{c['primary']['t_p']:.3g}"], sentence
    assert json.loads((folder / "comparison.json").read_text())["comparisons"]


def test_a_claimed_difference_names_both_tests_apart():
    """The published study's finding: the interval's own p 0.036, the paired t-test's 0.022 in its own sentence."""
    cmp = json.loads((ROOT / "docs/results/minilm-tuned-700/comparison.json").read_text())
    v = cmp["comparisons"]["lora_vs_full"]["primary"]["verdict"]
    assert "95% CI [-0.0193, -0.0008]" in v["text"] and "that interval's test p=0.0361, 12 pairs)" in v["text"]
    assert "The ordinary paired t-test, which leaves out the test-set noise shared by every pair, gives p=0.022." \
        in v["text"]
    readme = " ".join((ROOT / "docs/results/README.md").read_text().split())
    assert (f"95% CI [-0.0193, -0.0008] over seed, data-draw and test-set noise, 12 paired seeds (p = {v['p']:.3f} "
            "for that interval's test)") in readme
