"""Many methods through the real path: simulated comparison folders of 4 methods (full, the reference, and three
others on the same test set) in, comparison.json's verdicts and `possibly_best` out.

Two truths per scenario, 5 pairs:
- the null: every method equal. The family-wise rate of false claims (any of the 3 verdicts says better or worse)
  under Holm, next to what Bonferroni (p x 3) would have claimed; and how often each method (each is a true best
  here) is in the set that "cannot be told apart from the best";
- one method (m1) better than all others by one pair-SD: how often the verdicts claim it (Holm's power, next to
  Bonferroni's), how often a false claim is made about the two equal methods (m2, m3), and how often the set
  holds m1, the true best.
Scenarios and generating model: analysis/simulation.py (the decision-rule table's).

    python benchmarks/simulate_many_methods.py [--reps 100]

Writes benchmarks/results/many-methods.json and many-methods.md; resumable cell by cell.
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
PAIRS = 5
OTHERS = ("m1", "m2", "m3")  # compared with full; m1 carries the effect


def folder_outcome(folder: Path) -> dict:
    cmp = write_comparison(folder, supporting_evidence=False)
    out = {}
    for m in OTHERS:
        v = cmp["comparisons"][f"{m}_vs_full"]["primary"]["verdict"]
        out[m] = {"holm": v["kind"] in ("better", "worse"), "bonferroni": v["p"] is not None and v["p"] * 3 < 0.05,
                  "kind": v["kind"]}
    best = cmp["possibly_best"]["methods"]
    return {"verdicts": out, "in_set": {m: best[m]["in_set"] for m in best}}


def cell(scenario: str, pair_sds: float, reps: int, workdir: Path, seed: int) -> dict:
    sc = SCENARIOS[scenario]
    delta, truth = effect_for(sc, pair_sds) if pair_sds else (0.0, 0.0)
    rng = np.random.default_rng([seed, int(round(pair_sds * 100)), list(SCENARIOS).index(scenario)])
    counts = {"any_false_claim_holm": 0, "any_false_claim_bonferroni": 0, "m1_claimed_holm": 0,
              "m1_claimed_bonferroni": 0, "best_in_set": 0, "set_size": 0}
    in_set = {m: 0 for m in ("full", *OTHERS)}
    for rep in range(reps):
        folder = workdir / f"{scenario}-{pair_sds:g}-{rep}"
        more = {"m1": delta, "m2": 0.0, "m3": 0.0}
        y, source, preds = simulate_predictions(sc, rng, PAIRS, 0.0, more=more)
        preds = {m: preds[m] for m in ("full", *OTHERS)}
        o = folder_outcome(write_experiment(folder, y, source, preds))
        nulls = OTHERS if not pair_sds else ("m2", "m3")  # the comparisons with no true difference
        counts["any_false_claim_holm"] += any(o["verdicts"][m]["holm"] for m in nulls)
        counts["any_false_claim_bonferroni"] += any(o["verdicts"][m]["bonferroni"] for m in nulls)
        counts["m1_claimed_holm"] += o["verdicts"]["m1"]["kind"] == "better"
        counts["m1_claimed_bonferroni"] += o["verdicts"]["m1"]["bonferroni"]
        for m, inside in o["in_set"].items():
            in_set[m] += inside
        # the guarantee is per true best: under the null each of the four is one, so their mean rate
        counts["best_in_set"] += o["in_set"]["m1"] if pair_sds else float(np.mean(list(o["in_set"].values())))
        counts["set_size"] += sum(o["in_set"].values())
        shutil.rmtree(folder)
    return {"scenario": scenario, "pair_sds": pair_sds, "true_difference": truth, "reps": reps, "pairs": PAIRS,
            **{k: v / reps for k, v in counts.items()}, "in_set": {m: v / reps for m, v in in_set.items()}}


def run(reps: int, out: Path, seed: int = 0, scenarios: tuple[str, ...] = ("test-noise", "seed-noise"),
        effects: tuple[float, ...] = (0.0, 1.0)) -> dict:
    done = json.loads(out.read_text()) if out.is_file() else {}
    if done.get("reps") != reps or done.get("seed") != seed:
        done = {"reps": reps, "seed": seed, "pairs": PAIRS, "cells": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pair_sds in effects:
            for scenario in scenarios:
                key = f"{scenario}/{pair_sds:g}"
                if key in done["cells"]:
                    continue
                record_cell(done, key, out, lambda: cell(scenario, pair_sds, reps, Path(tmp), seed),
                            lambda c: f"any false claim (Holm) {c['any_false_claim_holm']:.1%}, best in set "
                                      f"{c['best_in_set']:.1%}")
    return done


def table(result: dict) -> str:
    def pct(p: float, n: int) -> str:
        return f"{p:.1%} ± {1.96 * math.sqrt(max(p * (1 - p), 0.05 * 0.95) / n):.1%}"

    rows = ["| scenario | truth | folders | any false claim, Holm | any false claim, Bonferroni | m1 claimed better, "
            "Holm | m1 claimed, Bonferroni | true best(s) in the set | mean set size (of 4) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cells"].values():
        n = c["reps"]
        truth = ("all 4 equal" if not c["pair_sds"] else
                 f"m1 better by {c['true_difference']:+.4f} ({c['pair_sds']:g} pair-SD)")
        rows.append(f"| {c['scenario']} | {truth} | {n} | {pct(c['any_false_claim_holm'], n)} | "
                    f"{pct(c['any_false_claim_bonferroni'], n)} | "
                    + ("– | – | " if not c["pair_sds"] else
                       f"{pct(c['m1_claimed_holm'], n)} | {pct(c['m1_claimed_bonferroni'], n)} | ")
                    + f"{pct(c['best_in_set'], n)} | {c['set_size']:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=100, help="folders per cell")
    parser.add_argument("--scenarios", default="test-noise,seed-noise", help="comma-separated, of: "
                        + ", ".join(SCENARIOS))
    parser.add_argument("--effects", default="0,1", help="true differences of m1, in pair-SDs (comma-separated)")
    parser.add_argument("--out", type=Path, default=RESULTS / "many-methods.json")
    args = parser.parse_args()
    result = run(args.reps, args.out, scenarios=tuple(args.scenarios.split(",")),
                 effects=tuple(float(e) for e in args.effects.split(",")))
    md = (f"4 methods (full, the reference; m1, m2, m3), {PAIRS} pairs; ± is 1.96 binomial standard errors of the "
          "simulation (at least that of a 5% rate). Under the null every method is a true best, so 'true best(s) "
          "in the set' is the mean over the four of how often each is in it (the guarantee is per true best: >= 95%).\n\n" + table(result) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
