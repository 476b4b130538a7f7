"""Does a run's memory figure depend on run order? Each method's "peak RSS above the run's start", with full
fine-tuning running first and with LoRA running first, in one process each (as `compare` runs them).

    python benchmarks/memory_order.py [--pairs 2] [--out benchmarks/results/memory-order.json]

MiniLM-L6 (embedded), 100 examples per class, 1 epoch: the quickstart's path at a size that takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

ONE_ORDER = """
import json, sys
from finetune_compare import Config, ComparisonExperiment
order, out, pairs = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
cfg = Config(model_name="embedded-minilm", data_source="embedded", samples_per_class=100, test_samples_per_class=30,
             num_epochs=1, num_runs=pairs, methods=order, output_dir=out, tracking_mlflow=False, tracking_wandb=False,
             evaluate_base_model=False)
ComparisonExperiment(cfg, device="cpu").run_multiple_runs(cfg)
rows = []
for m in order:
    for s in range(42, 42 + pairs):
        mem = json.load(open(f"{out}/runs/{m}/seed-{s}/metrics.json"))["memory"]
        rows.append({"method": m, "seed": s, **mem})
print(json.dumps(rows))
"""


def measure(order: str, pairs: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-c", ONE_ORDER, order, f"{tmp}/out", str(pairs)], capture_output=True,
                              text=True, env=env, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "memory-order.json")
    args = parser.parse_args()
    result = {order: measure(order, args.pairs) for order in ("full,lora", "lora,full")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| order | method | seed | baseline MB | peak RSS MB | above the run's start MB |", "|---|---|---:|---:|---:|---:|"]
    for order, rows in result.items():
        lines += [f"| {order} | {r['method']} | {r['seed']} | {r['baseline_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
                  f"{r['peak_rss_above_baseline_mb']:.0f} |" for r in rows]
    means = {(o, m): sum(r["peak_rss_above_baseline_mb"] for r in rows if r["method"] == m) / args.pairs
             for o, rows in result.items() for m in ("full", "lora")}
    lines += ["", "Mean above the run's start: " + "; ".join(
        f"{m} {means[('full,lora', m)]:.0f} MB (full first) vs {means[('lora,full', m)]:.0f} MB (lora first)"
        for m in ("full", "lora"))]
    args.out.with_suffix(".md").write_text("# Memory figure against run order\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
