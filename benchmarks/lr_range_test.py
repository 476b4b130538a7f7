"""The learning-rate range test that centres each peft type's default search space (methods/lr_centres.py).

For each method, one short run per learning rate on the quickstart's data and model (the embedded MiniLM-L6, 150
examples per class and source, one seed, the same declared budget of optimizer steps for every run), scored on the
validation split only (as the search is; the test split is never read here). The centre is the rate with the best
validation macro-F1; the method's default search space is then one decade around it (log-uniform), and its
learning-rate default is the centre. A short test on one model: a starting point for the search, not a tuned rate.

    python benchmarks/lr_range_test.py [--methods adalora,oft,...] [--steps 60]

Writes benchmarks/results/lr-range.json and lr-range.md, and src/finetune_compare/methods/lr_centres.py; resumable
method by method (a finished method is not rerun).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CENTRES = ROOT / "src" / "finetune_compare" / "methods" / "lr_centres.py"
METHODS = ("adalora", "oft", "boft", "lokr", "hra", "fourierft", "road", "delora", "ln_tuning", "prompt_tuning")
RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BEYOND = {RATES[0]: 3e-5, RATES[-1]: 1e-1}  # one more rate when the best lies at an end of the grid


def best_rate(scores: dict[str, float]) -> float:
    """The rate with the best validation score; ties go to the rate nearest 1e-3."""
    return max((float(r) for r in scores), key=lambda r: (scores[f"{r:g}"], -abs(math.log10(r / 1e-3))))


def one_run(method: str, rate: float, steps: int, tmp: Path) -> float:
    from finetune_compare.config import load_config
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    out = tmp / f"{method}-{rate:g}"
    config = load_config(str(ROOT / "configs" / "quickstart.yaml"), [
        f"methods=[{method}]", f"reference={method}", "num_runs=1", "budget_unit=steps", f"budget={steps}",
        f"{method}_learning_rate={rate}", "drift=false", "tracking_mlflow=false", "tracking_wandb=false",
        f"output_dir={out}"])
    result = ComparisonExperiment(config).run_multiple_runs()
    run = next(r for r in result["runs"] if r["method"] == method)
    return float(run["validation"]["best_macro_f1"])


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").is_file() else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores"


def write_centres(done: dict) -> None:
    centres = {m: r["centre"] for m, r in done["methods"].items()}
    lines = [
        '"""Learning-rate centres of the peft types\' default search spaces, from benchmarks/lr_range_test.py (generated',
        "by it; do not edit by hand). Each is the rate with the best validation macro-F1 among",
        ", ".join(f"{r:g}" for r in done["rates"]) + " (and 3e-05 or 0.1 where the best lay at an end of that grid),",
        f"one seed, {done['steps']} optimizer steps, the quickstart's data and the embedded MiniLM-L6, measured on",
        f"{done['machine']} with peft {done['versions']['peft']}, transformers {done['versions']['transformers']}, "
        f"torch {done['versions']['torch']}.",
        'A starting point for the search on one model, not a tuned rate."""',
        "",
        "LR_CENTRES = {",
        *[f'    "{m}": {c!r},' for m, c in sorted(centres.items())],
        "}",
        "",
    ]
    CENTRES.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path, default=RESULTS / "lr-range.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import peft
    import torch
    import transformers

    done = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if done.get("steps") != args.steps or done.get("rates") != list(RATES):
        done = {"steps": args.steps, "rates": list(RATES), "methods": {}}
    done.update(machine=machine(), versions={"peft": peft.__version__, "transformers": transformers.__version__,
                                             "torch": torch.__version__})
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            record = done["methods"].get(method)
            if record and record.get("extended") is not None:
                continue
            start = time.perf_counter()
            scores = record["validation_macro_f1"] if record else {
                f"{r:g}": one_run(method, r, args.steps, Path(tmp)) for r in RATES}
            best, extended = best_rate(scores), False
            if best in BEYOND:  # at an end of the grid: the best may lie past it, so one more rate there
                scores[f"{BEYOND[best]:g}"] = one_run(method, BEYOND[best], args.steps, Path(tmp))
                best, extended = best_rate(scores), BEYOND[best]
            done["methods"][method] = {"validation_macro_f1": scores, "centre": best, "extended": extended,
                                       "seconds": round(time.perf_counter() - start + (record or {}).get("seconds", 0),
                                                        1)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(done, indent=2) + "\n")
            print(f"{method}: centre {best:g} ({scores})", flush=True)
    write_centres(done)
    grid = (BEYOND[RATES[0]], *RATES, BEYOND[RATES[-1]])
    rows = ["| method | " + " | ".join(f"{r:g}" for r in grid) + " | centre |", "|---|" + "---:|" * (len(grid) + 1)]
    for m, r in done["methods"].items():
        scores = r["validation_macro_f1"]
        rows.append(f"| {m} | " + " | ".join(f"{scores[f'{x:g}']:.3f}" if f"{x:g}" in scores else "–" for x in grid)
                    + f" | {r['centre']:g} |")
    md = (f"Validation macro-F1 after {args.steps} optimizer steps, one seed, quickstart data, embedded MiniLM-L6; "
          f"{done['machine']}; peft {done['versions']['peft']}, transformers {done['versions']['transformers']}, "
          f"torch {done['versions']['torch']}. Ties go to the rate nearest 1e-3. Where the best of "
          f"{RATES[0]:g} to {RATES[-1]:g} lay at an end, one more rate past it was run (3e-05 or 0.1; – where not "
          "run).\n\n" + "\n".join(rows) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
