"""A small sweep's wall time on the local backend (one run after another, one torch thread) against the Ray
backend (2 runs side by side, 1 CPU and one torch thread each), in one invocation, same config and seeds; and
whether their results are equal (everything but timings, memory and where each run ran).

    python benchmarks/bench_ray.py [--pairs 2] [--out benchmarks/results/ray-cpu.json]

MiniLM-L6 (embedded), embedded data, 2 points (samples_per_class 80, 150) x 2 pairs x full and LoRA, 1 epoch.
Each backend runs in its own process (the Ray one starts its private, loopback-only Ray; its start-up is
included in its wall time, as a user would wait for it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CONFIG = dict(model_name="embedded-minilm", data_source="embedded", test_samples_per_class=30, num_epochs=1,
              num_threads=1, tracking_mlflow=False, tracking_wandb=False, evaluate_base_model=False,
              sweep={"samples_per_class": [80, 150]}, execution_cpus_per_run=1)
# resolved_config: the configuration as run names its backend and output folder, which differ by design
DROP = ("seconds", "per_second", "rss", "cuda_mb", "environment", "plots", "started", "throughput", "resolved_config")


def comparable(obj):
    """A sweep summary minus timings, memory and placement (also inside the verdict's cost sentence)."""
    if isinstance(obj, dict):
        return {k: comparable(v) for k, v in obj.items() if not any(d in k for d in DROP)}
    if isinstance(obj, list):
        return [comparable(v) for v in obj]
    if isinstance(obj, str):
        return re.sub(r"training time [\d.]+x, training memory \(peak RSS above each run's start\) [\d.]+x", "", obj)
    return obj


def run_backend(backend: str, pairs: int, folder: Path) -> dict:
    import yaml

    path = folder / f"{backend}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "num_runs": pairs, "output_dir": str(folder / backend)}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "finetune_compare.cli", "sweep", "--config", str(path), "--backend",
                    backend, "--quiet"], check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads((folder / backend / "sweep.json").read_text())
    runs = [json.loads(p.read_text()) for p in (folder / backend).glob("points/*/runs/*/seed-*/metrics.json")]
    return {"wall_seconds": round(wall, 1), "runs": len(runs),
            "sum_of_run_train_seconds": round(sum(r["timing"]["train_seconds"] for r in runs), 1),
            "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "ray-cpu.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measured = {b: run_backend(b, args.pairs, Path(tmp)) for b in ("local", "ray")}
    equal = comparable(measured["local"].pop("summary")["points"]) == comparable(measured["ray"].pop("summary")["points"])
    result = {"config": {**CONFIG, "num_runs": args.pairs}, "cpus": os.cpu_count(), **measured,
              "speedup": round(measured["local"]["wall_seconds"] / measured["ray"]["wall_seconds"], 2),
              "results_equal": equal}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| backend | runs | wall s | sum of the runs' training s |", "|---|---:|---:|---:|"]
    lines += [f"| {b} | {m['runs']} | {m['wall_seconds']} | {m['sum_of_run_train_seconds']} |"
              for b, m in measured.items()]
    lines.append(f"\nRay / local speed-up: {result['speedup']}x; results equal (but timings and placement): {equal}")
    text = "\n".join(lines)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
