"""The decision rule's error rates, measured through the real path: simulated comparison folders in, the verdict
from the comparison.json the report's first stage writes out (analysis/simulation.py has the generating model).

Three scenarios (test noise dominant at 450 test examples; seed noise dominant at 3,000; a method x example
interaction at 450), each at 3, 5 and 10 pairs, with no true difference and with a true difference of one pair-SD.
For every cell: the share of folders where the shipped rule claims a difference, where its 95% interval covers the
true difference, and the same for the paired t-test on the same folders and for the rule shipped before
(SD^2/n + SE_test^2 with a t-test condition).

    python benchmarks/simulate_decision_rule.py [--reps 400] [--out benchmarks/results/decision-rule.json]

Resumable: finished cells are kept in the output JSON and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from finetune_compare.analysis.simulation import SCENARIOS, effect_for, record_cell, simulate_cell  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PAIRS = (3, 5, 10)
EFFECTS = (0.0, 1.0)  # in pair-SDs


def run(reps: int, out: Path, scenarios=tuple(SCENARIOS), pairs=PAIRS, effects=EFFECTS, seed: int = 0) -> dict:
    done = json.loads(out.read_text()) if out.is_file() else {"reps": reps, "seed": seed, "cells": {}}
    if done.get("reps") != reps or done.get("seed", 0) != seed:
        done = {"reps": reps, "seed": seed, "cells": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in scenarios:
            sc = SCENARIOS[name]
            for effect in effects:
                delta = effect_for(sc, effect)
                for n in pairs:
                    key = f"{name}/{n}/{effect:g}"
                    if key in done["cells"]:
                        continue
                    record_cell(done, key, out,
                                lambda: simulate_cell(sc, n, effect, reps, Path(tmp), seed=seed, delta=delta),
                                lambda c: f"claims {c['claims']:.1%} (t-test {c['t_claims']:.1%}, before "
                                          f"{c['before_claims']:.1%}), coverage {c['covered']:.1%} (before "
                                          f"{c['before_covered']:.1%})")
    return done


def pool(results: list[dict]) -> dict:
    """Batches of folders with different seeds as one: every share weighted by its batch's folders (a share that an
    earlier batch did not record is pooled over the batches that did, and its folder count given)."""
    SKIP = ("true_difference", "pair_sds", "injected_pair_sds", "seconds")
    cells: dict[str, dict] = {}
    for r in results:
        for key, c in r["cells"].items():
            acc = cells.setdefault(key, {k: v for k, v in c.items() if not isinstance(v, float) or k in SKIP})
            acc["reps"] = acc.get("pooled_reps", 0) + c["reps"]
            for k, v in c.items():
                if isinstance(v, float) and k not in SKIP:
                    n = acc.setdefault("folders", {}).get(k, 0)
                    acc[k] = (acc.get(k, 0.0) * n + v * c["reps"]) / (n + c["reps"])
                    acc["folders"][k] = n + c["reps"]
            acc["pooled_reps"] = acc["reps"]
    for acc in cells.values():
        acc.pop("pooled_reps", None)
    return {"reps": sum(r["reps"] for r in results), "seeds": [r.get("seed", 0) for r in results], "cells": cells}


def table(result: dict) -> str:
    """The markdown table docs/statistics.md and the README quote."""
    lines = ["| scenario | pairs | false claims: now (paired t, before) | coverage: now (before) | "
             "power at 1 pair-SD: now (paired t, before) | coverage at 1 pair-SD |",
             "|---|---:|---:|---:|---:|---:|"]
    cells = result["cells"]
    for name in SCENARIOS:
        for n in sorted({int(k.split("/")[1]) for k in cells}):
            null, alt = cells.get(f"{name}/{n}/0"), cells.get(f"{name}/{n}/1")
            if not null or not alt:
                continue
            lines.append(f"| {name} | {n} | {null['claims']:.1%} ({null['t_claims']:.1%}, {null['before_claims']:.1%}) "
                         f"| {null['covered']:.1%} ({null['before_covered']:.1%}) | {alt['claims']:.1%} "
                         f"({alt['t_claims']:.1%}, {alt['before_claims']:.1%}) | {alt['covered']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=RESULTS / "decision-rule.json")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--pairs", nargs="+", type=int, default=list(PAIRS))
    parser.add_argument("--seed", type=int, default=0, help="seeds the folders (another seed: another batch)")
    parser.add_argument("--pool", nargs="+", type=Path, help="write the table of these batches' JSON files, pooled")
    args = parser.parse_args()
    if args.pool:
        result = pool([json.loads(p.read_text()) for p in args.pool])
        args.out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    else:
        result = run(args.reps, args.out, tuple(args.scenarios), tuple(args.pairs), seed=args.seed)
    md = table(result)
    args.out.with_suffix(".md").write_text(
        f"# Decision rule, simulated through comparison folders ({result['reps']} folders per cell)\n\n"
        + "\n".join(f"- {name}: {sc.description}" for name, sc in SCENARIOS.items()) + "\n\n" + md + "\n")
    print(md)


if __name__ == "__main__":
    main()
