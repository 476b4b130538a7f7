"""The wall time a plan makes: on the local backend every run after the previous one; on Ray the runs of each
comparison side by side, as many at once as the cluster's resources allow (`ray_executor.side_by_side`), in the
order the executor submits them. Points of a sweep run one after another on both backends.

It assumes a run keeps the probe's pace when others run beside it; runs that share a GPU, memory bandwidth or
CPU cores run slower than alone, so the Ray figure is a lower bound (docs/benchmarks.md measures the gap).
"""

from __future__ import annotations

import heapq
import math
import sys

from ...config import Config
from .cost_probe import Probe


def list_schedule(durations: list[float], slots: int) -> float:
    """When the last of `durations` ends, each started in order on the first free slot (Ray's queue)."""
    if not durations:
        return 0.0
    free = [0.0] * max(1, slots)
    for d in durations:
        heapq.heapreplace(free, free[0] + d)
    return max(free)


def _base_seconds(plan, probes: list[Probe]) -> float:
    if not plan.base_to_evaluate or not plan.probes:
        return 0.0
    probe = probes[plan.probes.get("full", next(iter(plan.probes.values())))]
    return plan.sizes["test_tokens"] * probe.eval_seconds_per_token


def point_seconds(plan, probes: list[Probe], slots: int = 1, trial_workers: int = 1) -> float:
    """A point's wall time with `slots` runs at once: checks and data, its tuning trials (`trial_workers` at once,
    study by study), the base model's test pass, then its runs."""
    runs = [plan.run_seconds[m] for m, _ in plan.pending()]
    trials = sum(list_schedule([plan.trial_seconds[m]] * n, trial_workers)
                 for m, n in plan.trials_to_run.items() if n and m in plan.trial_seconds)
    return plan.data_seconds + trials + _base_seconds(plan, probes) + list_schedule(runs, slots)


def cluster_resources(config: Config) -> tuple[dict, bool]:
    """What the configured Ray cluster reports (a private one is started and stopped for the question), and
    whether it is one this command started (this machine alone)."""
    already = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    from ..execution.ray_executor import connect

    connect(config)
    import ray

    try:
        return dict(ray.cluster_resources()), config.execution.execution_address is None and not already
    finally:
        if not already:
            ray.shutdown()


def _memory_warnings(config: Config, probes: list[Probe], slots: int, private: bool) -> list[str]:
    warnings = []
    gpus = config.execution.execution_gpus_per_run
    peaks = [p.peak_cuda_mb for p in probes if p.peak_cuda_mb]
    if 0 < gpus < 1 and peaks:
        import torch

        per_gpu = math.floor(1 / gpus + 1e-9)
        total = torch.cuda.get_device_properties(0).total_memory / 2**20
        if per_gpu * max(peaks) > 0.95 * total:
            warnings.append(f"{per_gpu} runs share a GPU (execution_gpus_per_run {gpus:g}) at up to {max(peaks):,.0f} "
                            f"MB each: {per_gpu * max(peaks):,.0f} MB, more than this machine's GPU holds "
                            f"({total:,.0f} MB); raise execution_gpus_per_run")
    rss = [p.peak_rss_mb for p in probes]
    if private and rss:
        import psutil

        total = psutil.virtual_memory().total / 2**20
        if slots * max(rss) > 0.9 * total:
            warnings.append(f"{slots} runs at once at up to {max(rss):,.0f} MB of RAM each need "
                            f"{slots * max(rss):,.0f} MB, more than this machine's {total:,.0f} MB; raise "
                            "execution_cpus_per_run to run fewer at once")
    return warnings


def ray_resources(config: Config) -> tuple[dict, bool] | None:
    """The Ray cluster's resources (None on the local backend), asked before anything is probed: a run that could
    never start stops the plan at once, as it would stop the command."""
    if config.execution.execution_backend != "ray":
        return None
    from ..execution.ray_executor import check_fits

    resources, private = cluster_resources(config)
    check_fits(resources, config)
    return resources, private


def wall_time(config: Config, plans: list, probes: list[Probe], cluster: tuple[dict, bool] | None = None) -> dict:
    runs = sum(len(p.pending()) for p in plans)
    out = {"runs_to_train": runs, "trials_to_run": sum(sum(p.trials_to_run.values()) for p in plans),
           "local_seconds": sum(point_seconds(p, probes) for p in plans)}
    if cluster is None:
        return out
    from ..execution.ray_executor import side_by_side

    resources, private = cluster
    slots = max(1, side_by_side(resources, config, max([len(p.pending()) for p in plans] + [1])))
    workers = min(config.search.hpo_workers, slots) if config.search.hpo_workers > 1 else 1
    out["ray"] = {"cpus": resources.get("CPU", 0), "gpus": resources.get("GPU", 0), "private": private,
                  "slots": slots, "trial_workers": workers,
                  "seconds": sum(point_seconds(p, probes, slots, workers) for p in plans),
                  "warnings": _memory_warnings(config, probes, slots, private)}
    return out
