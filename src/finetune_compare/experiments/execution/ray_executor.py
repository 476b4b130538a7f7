"""The runs of a comparison as Ray tasks (plain Ray core, not Ray Tune: the folders, resume and Optuna storage stay
ours). Each (method, seed) run is one task that declares `execution_cpus_per_run` CPUs and `execution_gpus_per_run`
GPUs; Ray pins the GPUs (CUDA_VISIBLE_DEVICES), so a run sees only its own, and a fraction packs several runs on
one card.

- Data is loaded and tokenised once, by this process (the driver): each pair's splits go to Ray's object store
  once and every method of the pair reads them from there.
- A task writes its run folder itself, with the local backend's code and rules (metrics.json last), into the
  comparison's folder: on a cluster of several machines that folder must be on storage every node mounts. A task
  that finds it missing fails at once with that message, and nothing is lost: the run is recorded as failed.
- A task that raises, or whose process or node dies, is retried `execution_max_retries` times; then its error is
  written to the run's failure.json, the other runs go on, and the report names the missing pairs. Rerunning the
  command trains only what is missing (as on the local backend), whichever backend ran the rest.
- Ctrl-C / SIGTERM stops the tasks still running (a private Ray is shut down, a joined cluster's tasks are
  cancelled); their folders have no metrics.json, so they rerun next time.
- The trackers (MLflow, W&B) are the driver's: each finished run is logged from its folder (its loss and
  validation curves from history.json, its final metrics and files), as a child of the comparison's record.
- A Ray the command starts itself is private to it and listens on 127.0.0.1 only (see `start_private_ray`).
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
import warnings
from dataclasses import replace
from pathlib import Path

from ...config import Config
from ...evaluation.run_record import RunRecord
from ...errors import UserError
from ...layout import ATTEMPT, FAILURE, HISTORY, RUN_FILES
from ...tracking import TrackerHub
from ...tracking.lifecycle import Outcome
from ...utils import signals
from ...utils.distributed import world_size
from ...utils.io import read_json, write_json
from ..study.study_plan import PairPlan, load_completed, run_dir_for
from .command_progress import CommandProgress, score_text
from .ray_reaper import start_reaper
from .context import RunContext, context_for_pair, environment_info, layer_shapes
from .run import run_method

log = logging.getLogger(__name__)
_private = {"ray": False}  # whether this process started the Ray it is connected to (start_private_ray)

# Ray's own switch (ray_constants.ENABLE_RAY_CLUSTER, read when ray is imported) for a single-machine Ray: with it off,
# Ray takes 127.0.0.1 as the node's address and binds its servers there instead of on every interface.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# what a task needs from this process's environment on a cluster Ray did not start from here
PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "MLFLOW_DISABLE_TELEMETRY",
              "FINETUNE_COMPARE_DATA_DIR")
POLL_SECONDS = 1.0
INSTALL = "pip install -e '.[ray]'"


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"execution_backend 'ray' needs Ray, which is not installed: {INSTALL} (or pip install ray), "
                        "or use --backend local") from None
    return ray


def start_private_ray(ray) -> None:
    """A Ray for this command alone, on this machine, listening on 127.0.0.1 only; checked before it starts (ray
    read the switch when it was imported) and after."""
    try:
        from ray._private import ray_constants  # where Ray keeps the switch it read at import (not a public API)

        multi_machine = ray_constants.ENABLE_RAY_CLUSTER
    except (ImportError, AttributeError):
        multi_machine = False  # a Ray without the switch: the check after start-up still holds
    if multi_machine:
        raise UserError(f"ray was imported in this process before {SINGLE_MACHINE_ENV}=0 was set, so a Ray started "
                        "here would listen on every network interface; set it in the environment before Python "
                        "starts, or start a cluster yourself and pass execution_address")
    start_reaper()  # Ray's agents outlive a SIGKILL of this process: the watcher kills them then
    try:
        ray.init(include_dashboard=False, configure_logging=False)  # its workers inherit this environment
    except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception when its node times out starting
        try:
            ray.shutdown()  # the processes that did start go with it
        except Exception:  # noqa: BLE001
            pass
        raise UserError(f"the private Ray for this command did not start ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160]}); on a busy machine its start can time out: rerun when "
                        "the load is lower, or use --backend local (finished runs are kept)") from None
    address = ray.util.get_node_ip_address()
    if address != "127.0.0.1":
        ray.shutdown()
        raise UserError(f"the private Ray started for this command took the address {address}, not 127.0.0.1, so it "
                        f"would listen on the network; set {SINGLE_MACHINE_ENV}=0 before anything imports ray, or "
                        "start a cluster yourself and pass execution_address")
    _private["ray"] = True


def connect(config: Config) -> None:
    """Join the configured Ray cluster, or start a private one (it stops when this process ends: Ray registers its
    own exit hook), unless this process is connected already (a sweep's earlier point, or the caller's ray.init)."""
    if world_size() > 1:
        raise UserError("execution_backend 'ray' runs each run in its own task: launch the command once, not under "
                        "torchrun (one run across several GPUs is the local backend under torchrun)")
    address = config.execution.execution_address
    if address is None:
        os.environ.setdefault(SINGLE_MACHINE_ENV, "0")  # before ray is imported: Ray reads it at import
    ray = import_ray()
    if ray.is_initialized():
        return
    if address is None:
        start_private_ray(ray)
    else:
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        try:
            ray.init(address=address, include_dashboard=False, configure_logging=False,
                     runtime_env={"env_vars": env})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"config key 'execution_address': cannot join the Ray cluster at {address!r}: "
                            f"{str(exc).splitlines()[0][:200]}") from None
        _private["ray"] = False
    # ray.init replaces the SIGTERM handler with its own sys.exit, which unwinds through Ray's threads and aborts
    # the driver (exit -6, a crash dump): ours goes back, so SIGTERM stops the command like Ctrl-C (tasks cancelled)
    signals.install()
    resources = ray.cluster_resources()
    log.info("ray: %s cluster, %g CPUs, %g GPUs", "private local" if address is None else address,
             resources.get("CPU", 0), resources.get("GPU", 0))


def side_by_side(resources: dict, config: Config, tasks: int) -> int:
    """How many runs the cluster's resources let run at once."""
    ex = config.execution
    limits = [tasks, int(resources.get("CPU", 0) // ex.execution_cpus_per_run)]
    if ex.execution_gpus_per_run:
        limits.append(int(resources.get("GPU", 0) // ex.execution_gpus_per_run + 1e-9))
    return max(0, min(limits))


def check_fits(resources: dict, config: Config) -> None:
    ex = config.execution
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if ex.execution_cpus_per_run > cpus or ex.execution_gpus_per_run > gpus:
        raise UserError(f"a run declares {ex.execution_cpus_per_run} CPU(s) and {ex.execution_gpus_per_run:g} GPU(s) "
                        f"(execution_cpus_per_run, execution_gpus_per_run) but the Ray cluster has {cpus:g} CPU(s) "
                        f"and {gpus:g} GPU(s): no run could ever start")


def portable(ctx: RunContext) -> RunContext:
    """What a task needs, without what cannot or need not travel: the data pools (each pair's splits are already
    built) and the trackers (the driver logs the runs)."""
    return replace(ctx, pools=None, hub=TrackerHub([]), output_dir=Path(ctx.output_dir).resolve())


def _next_attempt(run_dir: Path) -> int:
    path = run_dir / ATTEMPT
    try:
        return int(read_json(path)["attempt"]) + 1
    except (OSError, ValueError, KeyError, TypeError):
        return 1


def run_task(ctx: RunContext, method: str, seed: int) -> RunRecord:
    """One run inside a Ray worker: its device is the one Ray pinned for it; the folder is written as locally."""
    import ray

    out = ctx.output_dir
    if not out.is_dir():
        raise UserError(f"the comparison's folder {out} does not exist on node {socket.gethostname()}: on a cluster "
                        "of several machines output_dir must be on storage every node mounts")
    run_dir = run_dir_for(out, method, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt = _next_attempt(run_dir)
    placement = {"backend": "ray", "host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
                 "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "attempt": attempt,
                 "started_at": time.time()}
    write_json(run_dir / ATTEMPT, placement)
    (run_dir / FAILURE).unlink(missing_ok=True)
    return run_method(task_context(ctx, placement), method, seed)


def task_context(ctx: RunContext, placement: dict) -> RunContext:
    """The context inside a Ray worker: its torch threads, the device Ray pinned for it, where it ran."""
    import torch
    from transformers.utils import logging as hf_logging

    from ...training.device import choose_precision, resolve_device

    hf_logging.disable_progress_bar()  # a worker's bars would interleave in the driver's one progress view
    # transformers' own deprecation notice, repeated by every worker process in the driver's log
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    torch.set_num_threads(ctx.config.training.num_threads or ctx.config.execution.execution_cpus_per_run)
    device = resolve_device(ctx.config.training.device)
    choice = choose_precision(ctx.config.training.mixed_precision, device, layer_shapes(ctx.provider, ctx.config),
                              ctx.config.training.prefer_memory_over_speed)  # this worker's threads: its own probe
    environment = {**environment_info(device, choice.precision, choice), "executor": placement}
    return replace(ctx, device=device, precision=choice.precision, environment=environment)


def _record_failure(ctx: RunContext, method: str, seed: int, exc: BaseException) -> str:
    run_dir = run_dir_for(ctx.output_dir, method, seed)
    error = _error_text(exc)
    attempts = _next_attempt(run_dir) - 1
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / FAILURE, {"method": method, "seed": seed, "error": error, "attempts": attempts,
                                   "max_retries": ctx.config.execution.execution_max_retries,
                                   "failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                                       timespec="seconds")})
    return error


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the task's own exception
    inner = cause if isinstance(cause, BaseException) else exc
    lines = [line for line in str(inner).strip().splitlines() if line.strip()]
    return f"{type(inner).__name__}: {lines[-1][:300] if lines else ''}"


def log_to_trackers(hub: TrackerHub, config: Config, record: RunRecord, run_dir: Path) -> None:
    """A run that a task trained, logged from its folder as the local backend logs it while training."""
    method, seed = record.method, record.seed
    hub.start_run(f"{method}-seed{seed}", config.for_method(method), {"method": method, "seed": seed})
    history = read_json(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else {"train": [], "eval": []}
    for entry in history.get("train", []):
        hub.log_metrics({k: float(v) for k, v in entry.items() if k not in ("step", "epoch")}, entry["step"])
    for entry in history.get("eval", []):
        values = {f"eval_{k}": float(v) for k, v in entry.items()
                  if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "step" in entry:
            hub.log_metrics(values, entry["step"])
    outcome = Outcome({k: getattr(record, k) for k in ("test", "params", "timing", "memory")},
                      [run_dir / n for n in RUN_FILES])
    hub.end_run("FINISHED", outcome.metrics, outcome.artifacts)


def run_on_ray(ctx: RunContext, methods: list[str], pairs: list[PairPlan], progress: CommandProgress
               ) -> list[RunRecord]:
    config = ctx.config
    ex = config.execution
    connect(config)
    import ray
    from ray.exceptions import RayError

    resources = ray.cluster_resources()
    check_fits(resources, config)
    task = ray.remote(run_task).options(num_cpus=ex.execution_cpus_per_run, num_gpus=ex.execution_gpus_per_run,
                                        max_retries=ex.execution_max_retries, retry_exceptions=True)
    results: dict[tuple[str, int], RunRecord] = {}
    pending: dict = {}  # ObjectRef -> (method, seed, submitted at)
    try:
        for pair in pairs:
            for method in methods:
                if method not in pair.to_train:
                    done = load_completed(run_dir_for(ctx.output_dir, method, pair.seed))
                    results[(method, pair.seed)] = RunRecord.from_json(done)
            if pair.to_train:
                shared = ray.put(portable(context_for_pair(ctx, pair)))  # once per pair, read by its methods
                for method in pair.to_train:
                    pending[task.remote(shared, method, pair.seed)] = (method, pair.seed, time.time())
        for (method, seed), record in results.items():
            progress.start(method, seed)
            progress.finish(method, seed, False, score_text(ctx.config, record))
        progress.slots = max(1, side_by_side(resources, config, len(pending)))
        if pending:
            log.info("ray: %d run(s) queued, up to %d at once (%d CPU and %g GPU each)", len(pending),
                     progress.slots, ex.execution_cpus_per_run, ex.execution_gpus_per_run)
        _collect(ray, RayError, ctx, pending, progress, results)
    except BaseException:  # Ctrl-C, SIGTERM, or a driver error: nothing keeps training for a command that ended
        stop_tasks(ray, list(pending))
        raise
    return [results[(m, p.seed)] for p in pairs for m in methods if (m, p.seed) in results]


def stop_tasks(ray, refs: list) -> None:
    """Stop the tasks of refs. A private Ray is shut down: its node's processes, the tasks' workers among them, end
    with it. Cancelling each task instead can abort the driver: a cancel that meets the reply of a task finishing at
    that moment trips a check in Ray's core worker ("Tried to complete task that was not pending", exit 1 and a crash
    dump after our own stop message; ray-project/ray#54260). A cluster this process joined is not ours to stop: its
    tasks are cancelled, the queued ones first, so that none of them takes the place a cancelled running one frees."""
    if _private["ray"] and ray.is_initialized():
        _private["ray"] = False
        ray.shutdown()
        return
    for ref in reversed(refs):  # submitted in order, so the queued ones are last
        ray.cancel(ref, force=True)


def _started_since(run_dir: Path, submitted: float) -> bool:
    try:
        return float(read_json(run_dir / ATTEMPT)["started_at"]) >= submitted
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _collect(ray, ray_error, ctx: RunContext, pending: dict, progress: CommandProgress, results: dict) -> None:
    """Wait for every task, a second at a time (a signal is seen within a second); each finished run is reported,
    each failed one recorded, as it happens."""
    started: set[tuple[str, int]] = set()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
        for method, seed, submitted in pending.values():  # a task's attempt file, written since, says it started
            if (method, seed) not in started and _started_since(run_dir_for(ctx.output_dir, method, seed), submitted):
                started.add((method, seed))
                progress.start(method, seed)
        for ref in ready:
            method, seed, _ = pending.pop(ref)
            if (method, seed) not in started:
                started.add((method, seed))
                progress.start(method, seed)
            try:
                record = ray.get(ref)
            except ray_error as exc:
                progress.fail(method, seed, _record_failure(ctx, method, seed, exc))
                continue
            results[(method, seed)] = record
            progress.finish(method, seed, True, score_text(ctx.config, record))
            log_to_trackers(ctx.hub, ctx.config, record, run_dir_for(ctx.output_dir, method, seed))
