"""What each method gives up, through the real path (issue 40's rows): simulated comparison folders with TweetEval
held out (runs record test.domain, as `holdout_sources` writes it) in, comparison.json's `gives_up` out.

With no true difference (the null), how often is a row "detected" (Holm-adjusted p < 0.05 within its family):
the in-domain and out-of-domain rows (one family), each source's row (another), and any row of a family; and how
often each row's interval covers 0. With a true difference of one pair-SD (the same for every source), how often
the out-of-domain row detects it. Scenarios and generating model: analysis/simulation.py (the decision-rule
table's), 5 pairs.

    python benchmarks/simulate_gives_up.py [--reps 100] [--power-reps 50]

Writes benchmarks/results/gives-up.json and gives-up.md; resumable cell by cell.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from finetune_compare.analysis.aggregate import write_comparison  # noqa: E402
from finetune_compare.analysis.simulation import (SCENARIOS, effect_for, record_cell, simulate_predictions,  # noqa: E402
                                                  write_experiment)

RESULTS = Path(__file__).resolve().parent / "results"
HELD_OUT = ("tweeteval",)
PAIRS = 5


def _rows(folder: Path) -> dict[str, dict]:
    """{row kind: row} of lora_vs_full's domain and per-source families, as comparison.json holds them."""
    cmp = write_comparison(folder, supporting_evidence=False)
    family = cmp["gives_up"]["comparisons"]["lora_vs_full"]
    per_source = cmp["gives_up"]["per_source"]["lora_vs_full"]
    return {**{r["kind"]: r for r in family}, **{r["metric"]: r for r in per_source}}


def cell(scenario: str, pair_sds: float, reps: int, workdir: Path, seed: int) -> dict:
    sc = SCENARIOS[scenario]
    delta, truth = effect_for(sc, pair_sds) if pair_sds else (0.0, 0.0)
    rng = np.random.default_rng([seed, int(round(pair_sds * 100)), list(SCENARIOS).index(scenario)])
    detected: dict[str, int] = {}
    covered: dict[str, int] = {}
    any_domain = any_source = 0
    for rep in range(reps):
        folder = workdir / f"{scenario}-{pair_sds:g}-{rep}"
        y, source, preds = simulate_predictions(sc, rng, PAIRS, delta)
        rows = _rows(write_experiment(folder, y, source, preds, held_out=HELD_OUT))
        for name, r in rows.items():
            detected[name] = detected.get(name, 0) + bool(r["detected"])
            covered[name] = covered.get(name, 0) + (r["ci_low"] <= truth <= r["ci_high"])
        any_domain += any(rows[k]["detected"] for k in ("in_domain", "out_of_domain"))
        any_source += any(r["detected"] for k, r in rows.items() if k.startswith("macro_f1_"))
        shutil.rmtree(folder)
    return {"scenario": scenario, "pair_sds": pair_sds, "true_difference": truth, "reps": reps, "pairs": PAIRS,
            "detected": {k: v / reps for k, v in detected.items()}, "covered": {k: v / reps for k, v in covered.items()},
            "any_domain_row": any_domain / reps, "any_source_row": any_source / reps}


def run(reps: int, power_reps: int, out: Path, seed: int = 0, scenarios: tuple[str, ...] = ("test-noise", "seed-noise")
        ) -> dict:
    done = json.loads(out.read_text()) if out.is_file() else {}
    if done.get("reps") != reps or done.get("power_reps") != power_reps or done.get("seed") != seed:
        done = {"reps": reps, "power_reps": power_reps, "seed": seed, "held_out": list(HELD_OUT), "cells": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pair_sds, count in ((0.0, reps), (1.0, power_reps)):
            for scenario in scenarios:
                key = f"{scenario}/{pair_sds:g}"
                if key in done["cells"] or count == 0:
                    continue
                record_cell(done, key, out, lambda: cell(scenario, pair_sds, count, Path(tmp), seed),
                            lambda c: f"out-of-domain detected {c['detected']['out_of_domain']:.1%}, any domain row "
                                      f"{c['any_domain_row']:.1%}")
    return done


def table(result: dict) -> str:
    def pct(p: float, n: int) -> str:
        return f"{p:.1%} ± {1.96 * math.sqrt(max(p * (1 - p), 0.05 * 0.95) / n):.1%}"

    rows = ["| scenario | true difference | reps | in-domain row detected | out-of-domain row detected | any domain "
            "row (family of 2) | any source row (family of 3) | out-of-domain interval covers the truth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, c in result["cells"].items():
        n = c["reps"]
        rows.append(f"| {c['scenario']} | {c['true_difference']:+.4f} ({c['pair_sds']:g} pair-SD) | {n} | "
                    f"{pct(c['detected']['in_domain'], n)} | {pct(c['detected']['out_of_domain'], n)} | "
                    f"{pct(c['any_domain_row'], n)} | {pct(c['any_source_row'], n)} | "
                    f"{pct(c['covered']['out_of_domain'], n)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=100, help="folders per null cell")
    parser.add_argument("--power-reps", type=int, default=50, help="folders per cell with a true difference")
    parser.add_argument("--scenarios", default="test-noise,seed-noise", help="comma-separated, of: "
                        + ", ".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS / "gives-up.json")
    args = parser.parse_args()
    result = run(args.reps, args.power_reps, args.out, scenarios=tuple(args.scenarios.split(",")))
    md = (f"Held out: {', '.join(HELD_OUT)}; {PAIRS} pairs; ± is 1.96 binomial standard errors of the "
          f"simulation (at least that of a 5% rate).\n\n" + table(result) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
