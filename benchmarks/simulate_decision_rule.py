"""Simulate the comparison's decision rule: false directional claims, interval coverage and power.

Synthetic paired scores: pair k shares a component (same data draw and batch order), each method adds
its own seed noise; the paired differences have SD 0.01. "before" is the rule this project shipped
first (BCa bootstrap CI of the paired differences and Welch's unpaired t-test; a claim, "beats" or
"weak evidence", when either excluded no difference; ASO left out because its 500 iterations per
call make thousands of repetitions slow). "after" is `analysis.statistics.decide`.

    python benchmarks/simulate_decision_rule.py [--reps 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from finetune_compare.analysis.simulation import project_rule, simulate_rule


def old_rule(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[bool, float | None, float | None]:
    d = a - b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((d,), np.mean, confidence_level=0.95, method="BCa", n_resamples=2000,
                              random_state=seed)
        low, high = res.confidence_interval.low, res.confidence_interval.high
        if not (math.isfinite(low) and math.isfinite(high)):
            res = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=2000, random_state=seed)
            low, high = res.confidence_interval.low, res.confidence_interval.high
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
    claim = (low > 0 or high < 0) or p < 0.05
    return claim, low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    out = {}
    print(f"{'pairs':>5} {'rule':>7} {'false claims (no difference)':>30} {'coverage':>9} {'power at 1 SD':>14}")
    for n in (3, 5, 10):
        for rule in ("before", "after"):
            fn = old_rule if rule == "before" else project_rule
            null = simulate_rule(fn, n, 0.0, args.reps)
            alt = simulate_rule(fn, n, 1.0, args.reps, seed=1)
            out[f"{rule}-{n}"] = {"false_claims": null["claims"], "coverage": null["coverage"],
                                  "power_1sd": alt["claims"]}
            print(f"{n:>5} {rule:>7} {null['claims']:>30.1%} {null['coverage']:>9.1%} {alt['claims']:>14.1%}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
