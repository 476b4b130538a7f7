"""Clustered test data through the real path (issue 37): the method x example interaction shared by clusters of 10
test examples (analysis/simulation.py's CLUSTERED), the folders' predictions with and without their cluster ids (a
declared cluster_column makes the test-set bootstrap resample whole clusters). For each pair count: how often the
rule claims a difference on this test set that does not carry over to other test sets, its coverage, and its power
at one pair-SD.

    python benchmarks/simulate_clustered.py [--reps 200] [--power-reps 100]

Writes benchmarks/results/clustered.json and clustered.md; resumable like simulate_decision_rule.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from finetune_compare.analysis.simulation import CLUSTERED, effect_for, record_cell, simulate_cell  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def run(reps: int, power_reps: int, out: Path, seed: int = 0) -> dict:
    done = json.loads(out.read_text()) if out.is_file() else {}
    if done.get("reps") != reps or done.get("power_reps") != power_reps or done.get("seed") != seed:
        done = {"reps": reps, "power_reps": power_reps, "seed": seed, "cells": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for effect, count in ((0.0, reps), (1.0, power_reps)):
            if count == 0:  # (as simulate_gives_up: --power-reps 0 runs the null cells only)
                continue
            delta = effect_for(CLUSTERED, effect)
            for n in (5, 10):
                for declared in (False, True):
                    key = f"{n}/{effect:g}/{'clusters' if declared else 'examples'}"
                    if key in done["cells"]:
                        continue
                    record_cell(done, key, out,
                                lambda: simulate_cell(CLUSTERED, n, effect, count, Path(tmp), seed=seed, delta=delta,
                                                      declare_clusters=declared),
                                lambda c: f"claims {c['claims']:.1%}, coverage {c['covered']:.1%}")
    return done


def table(result: dict) -> str:
    def se(p: float, n: int) -> float:
        return math.sqrt(max(p * (1 - p), 0.05 * 0.95) / n)

    rows = ["| pairs | bootstrap resamples | false claims (no difference) | coverage | power at one pair-SD |",
            "|---:|---|---:|---:|---:|"]
    cells = result["cells"]
    for n in (5, 10):
        for kind in ("examples", "clusters"):
            null, alt = cells.get(f"{n}/0/{kind}"), cells.get(f"{n}/1/{kind}")
            if not null:
                continue
            rows.append(f"| {n} | {'whole clusters (cluster_column)' if kind == 'clusters' else 'single examples'} | "
                        f"{null['claims']:.1%} (± {2 * se(null['claims'], null['reps']):.1%}, {null['reps']} folders) | "
                        f"{null['covered']:.1%} | "
                        + (f"{alt['claims']:.1%} ({alt['reps']} folders)" if alt else "–") + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=200, help="folders per cell under no difference")
    parser.add_argument("--power-reps", type=int, default=100, help="folders per cell at one pair-SD")
    parser.add_argument("--out", type=Path, default=RESULTS / "clustered.json")
    args = parser.parse_args()
    result = run(args.reps, args.power_reps, args.out)
    text = (f"Scenario: {CLUSTERED.description}. Simulated through the report path (folders in, comparison.json "
            "out); ± is two binomial SEs (at the 5% rate where the measured one is lower).\n\n" + table(result) + "\n")
    args.out.with_suffix(".md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
