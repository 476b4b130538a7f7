"""How close `finetune-compare plan --config` comes: its estimate against the command it plans, run right after it
on the same machine, for the quickstart compare (local backend) and a small sweep on a private Ray (2 runs side by
side, 1 CPU and one torch thread each, as benchmarks/bench_ray.py).

    python benchmarks/bench_plan.py [--case quickstart|ray-sweep|all] [--out benchmarks/results/plan-estimate.json]
    python benchmarks/bench_plan.py --case quickstart --load 2   # under a declared synthetic load

`--load N` keeps N busy processes (a pure-Python spin each, one core each) running from before the plan until the
command ends, the way other jobs share a machine; the result records the load average seen, whether the plan's
probe said the machine was busy, and whether each method's measured runs fell inside the plan's estimated range.

Compared per method: the estimated seconds of one run against each run's measured training plus test-pass seconds
(metrics.json), and the probe's peak RSS against each run's; and the estimated wall time of all runs against the
command's measured wall time (which also holds loading the libraries and writing the report).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SMALL_SWEEP = dict(model_name="embedded-minilm", data_source="embedded", test_samples_per_class=30, num_epochs=1,
                   num_threads=1, tracking_mlflow=False, tracking_wandb=False, evaluate_base_model=False,
                   sweep={"samples_per_class": [80, 150]}, execution_cpus_per_run=1, num_runs=2)
CASES = {"quickstart": ("compare", ["--config", "configs/quickstart.yaml"], []),
         "ray-sweep": ("sweep", None, ["--backend", "ray"])}


def _run(argv: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "finetune_compare.cli", *argv, "--quiet"], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
MAX_LOAD_SECONDS = 3600  # a spinner never outlives the benchmark by more than this, even if it is killed


class SyntheticLoad:
    """N processes spinning one core each (bounded in time), started and stopped around a measurement."""

    def __init__(self, processes: int):
        self.processes, self.children, self.loadavg = processes, [], []

    def __enter__(self):
        self.children = [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=MAX_LOAD_SECONDS)])
                         for _ in range(self.processes)]
        time.sleep(5 if self.processes else 0)  # let the load average start to see them
        self.loadavg.append(os.getloadavg()[0])
        return self

    def sample(self) -> None:
        self.loadavg.append(os.getloadavg()[0])

    def __exit__(self, *exc):
        self.sample()
        for child in self.children:
            child.kill()
            child.wait(timeout=30)


def measure(case: str, folder: Path, load: int = 0) -> dict:
    with SyntheticLoad(load) as synthetic:
        result = _measure(case, folder, synthetic)
    return {**result, "declared_load_processes": load, "cores": os.cpu_count(),
            "loadavg_1min": [round(v, 2) for v in synthetic.loadavg]}


def _measure(case: str, folder: Path, synthetic: SyntheticLoad) -> dict:
    import yaml

    command, config_args, extra = CASES[case]
    if config_args is None:
        path = folder / "sweep.yaml"
        path.write_text(yaml.safe_dump(SMALL_SWEEP))
        config_args = ["--config", str(path)]
    out = folder / case
    plan_file = folder / f"{case}-plan.json"
    plan_wall = _run(["plan", *config_args, *extra, "--output-dir", str(out), "--json", str(plan_file)])
    plan = json.loads(plan_file.read_text())
    synthetic.sample()
    wall = _run([command, *config_args, *extra, "--output-dir", str(out)])
    runs = [json.loads(p.read_text()) for p in out.glob("**/runs/*/seed-*/metrics.json")]
    methods = sorted({r["method"] for r in runs})
    estimated = {m: [p["estimated_run_seconds"][m] for p in plan["points"]] for m in methods}
    probe_rss = {plan["probes"][i]["method"]: plan["probes"][i]["peak_rss_mb"]
                 for p in plan["points"] for i in p["probe_of"].values()}
    per_method = {}
    for m in methods:
        measured = [r["timing"]["train_seconds"] + r["timing"]["eval_seconds"] for r in runs if r["method"] == m]
        rss = [r["memory"]["peak_rss_mb"] for r in runs if r["method"] == m]
        ranges = [p["estimated_run_seconds_range"][m] for p in plan["points"]]
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        per_method[m] = {"estimated_run_seconds": estimated[m], "estimated_run_seconds_range": [low, high],
                         "measured_run_seconds_mean": round(statistics.mean(measured), 1),
                         "measured_run_seconds_range": [round(min(measured), 1), round(max(measured), 1)],
                         "measured_inside_estimated_range": sum(low <= v <= high for v in measured),
                         "probe_peak_rss_mb": probe_rss[m], "run_peak_rss_mb_range": [min(rss), max(rss)]}
    key = "ray" if "ray" in plan["estimated_wall"] else None
    estimate = plan["estimated_wall"]["ray"]["seconds"] if key else plan["estimated_wall"]["local_seconds"]
    return {"case": case, "command": command, "runs": len(runs), "plan_seconds": round(plan_wall, 1),
            "plan_said_busy": any(p.get("busy") for p in plan["probes"]),
            "estimated_wall_seconds": estimate, "measured_wall_seconds": round(wall, 1),
            "estimate_over_measured": round(estimate / wall, 3), "per_method": per_method,
            "slots": plan["estimated_wall"]["ray"]["slots"] if key else 1}


def markdown(results: list[dict], machine: str) -> str:
    lines = [f"# plan --config: estimate against the command it plans ({machine})", "",
             "| case | synthetic load | load average (1 min) | plan said busy | runs | plan took | estimated wall | "
             "measured wall | estimate / measured |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        load = r.get("declared_load_processes", 0)
        avg = r.get("loadavg_1min") or []
        lines.append(f"| {r['case']} ({r['command']}, {r['slots']} at once) | "
                     f"{f'{load} spinning processes' if load else 'none (idle)'} | "
                     f"{f'{min(avg)}-{max(avg)}' if avg else '–'} on {r.get('cores', '?')} cores | "
                     f"{'yes' if r.get('plan_said_busy') else 'no'} | {r['runs']} | {r['plan_seconds']} s | "
                     f"{r['estimated_wall_seconds']} s | {r['measured_wall_seconds']} s | {r['estimate_over_measured']} |")
    lines += ["", "| case | synthetic load | method | estimated run (range) | measured runs (mean, range) | measured "
              "inside the estimated range | probe peak RSS | runs' peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for m, v in r["per_method"].items():
            low, high = v.get("estimated_run_seconds_range", [None, None])
            n = len(r["per_method"]) and r["runs"] // len(r["per_method"])
            lines.append(f"| {r['case']} | {r.get('declared_load_processes', 0)} | {m} | "
                         f"{', '.join(f'{s} s' for s in v['estimated_run_seconds'])} ({low}-{high} s) | "
                         f"{v['measured_run_seconds_mean']} s ({v['measured_run_seconds_range'][0]}-"
                         f"{v['measured_run_seconds_range'][1]}) | {v.get('measured_inside_estimated_range', '–')} of "
                         f"{n} | {v['probe_peak_rss_mb']:,.0f} MB | "
                         f"{v['run_peak_rss_mb_range'][0]:,.0f}-{v['run_peak_rss_mb_range'][1]:,.0f} MB |")
    lines += ["", "The measured wall time also holds loading the libraries (~10 s) and writing the report; the "
              "estimate covers the runs, their data and checks. Under load the figures describe that load only: "
              "another machine or another load gives other ones, which is why the plan says when it was busy."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    parser.add_argument("--out", type=Path, default=RESULTS / "plan-estimate.json")
    parser.add_argument("--load", type=int, default=0, help="busy processes kept running during the measurement")
    parser.add_argument("--append", action="store_true", help="add to the results already in --out")
    args = parser.parse_args()
    import platform

    import torch

    from finetune_compare.training.precision_probe import cpu_model

    machine = f"{cpu_model() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(c, Path(tmp), args.load) for c in (CASES if args.case == "all" else [args.case])]
    if args.append and args.out.is_file():
        results = json.loads(args.out.read_text())["results"] + results
    args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results, machine))
    print(markdown(results, machine))


if __name__ == "__main__":
    main()
