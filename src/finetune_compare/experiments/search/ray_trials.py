"""`optimize --workers N --backend ray`: N trial workers per study, each a Ray task with the execution section's
resources, all sharing the study through its storage (as several `optimize` processes on one `--storage` do).

- The storage must take writes from several processes at once: a journal file (one machine, or a file system
  every node mounts) or an RDB server (PostgreSQL, MySQL). The default SQLite file is refused for N > 1.
- The driver creates every study first (parallel first creation is where storages race), then starts the workers
  of every method at once; a worker loads its study, fails the trials a dead process left RUNNING (so a worker
  lost mid-trial and retried by Ray does not leave its trial counted as running), and optimises until the study
  counts `n_trials` over all workers (up to N - 1 more can finish while the last ones run).
- Worker i seeds its sampler with seed + i: the same seed in two workers would propose the same settings.
- Trials log to no tracker on Ray (each trial's settings, score and timings are in the study and its trials table).
"""

from __future__ import annotations

import logging
import time

from ...errors import UserError
from ...layout import Layout
from ..execution.context import RunContext

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


def check_shared_storage(url: str | None, workers: int) -> None:
    if workers > 1 and (url is None or url.startswith("sqlite")):
        raise UserError(f"hpo_workers {workers}: several trial workers write one study at once, which the SQLite file "
                        f"{'in the output folder ' if url is None else ''}cannot take; use --storage journal:PATH (one "
                        "machine, or a file system every node mounts) or postgresql://... (see docs/ray.md)")


def trial_worker(ctx: RunContext, method: str, space: dict, storage_url: str | None, n_trials: int,
                 index: int) -> None:
    """Inside a Ray worker: optimise `method`'s study until it counts `n_trials`."""
    import optuna

    from .trials import optimize_to_count
    from ..execution.ray_executor import task_context
    from .studies import create_study, fail_orphaned_trials, make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ctx = task_context(ctx, {"backend": "ray", "trial_worker": index})
    storage = make_storage(storage_url, ctx.output_dir)
    study = create_study(ctx.config.search, ctx.config.experiment.seed + index, method, ctx.output_dir, storage_url,
                         space, storage)
    fail_orphaned_trials(study, storage)
    optimize_to_count(study, ctx, method, space, n_trials)


def run_trial_workers(ctx: RunContext, studies: dict, spaces: dict, storage_url: str | None, n_trials: int) -> None:
    """Every method's workers at once, as many side by side as the resources allow; one progress line per study
    whenever its count of finished trials changes."""
    from ..execution.ray_executor import check_fits, connect, portable
    from .studies import counted_trials

    config = ctx.config
    ex, workers = config.execution, config.search.hpo_workers  # the storage was checked before anything trained
    connect(config)
    import ray
    from ray.exceptions import RayError

    check_fits(ray.cluster_resources(), config)
    task = ray.remote(trial_worker).options(num_cpus=ex.execution_cpus_per_run, num_gpus=ex.execution_gpus_per_run,
                                            max_retries=ex.execution_max_retries, retry_exceptions=False)
    shared = ray.put(portable(ctx))
    url = storage_url or config.search.hpo_storage
    pending = {task.remote(shared, m, spaces[m], url, n_trials, i): m
               for m, study in studies.items() if counted_trials(study) < n_trials for i in range(workers)}
    log.info("ray: %d trial worker(s), %d per study (%s), until each study counts %d trials", len(pending), workers,
             ", ".join(sorted(set(pending.values()))), n_trials)
    seen = {m: counted_trials(s) for m, s in studies.items()}
    started = time.perf_counter()
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            for ref in ready:
                method = pending.pop(ref)
                try:
                    ray.get(ref)
                except RayError as exc:
                    log.error("%s: a trial worker failed on every attempt (%s); the others go on",
                              method, str(exc).strip().splitlines()[-1][:300])
            for method, study in studies.items():
                now = counted_trials(study)
                if now != seen[method]:
                    seen[method] = now
                    log.info("%s: %d of %d trials finished (%d workers on Ray, %.0f s elapsed)", study.study_name,
                             min(now, n_trials), n_trials, workers, time.perf_counter() - started)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    short = {m: seen[m] for m in studies if seen[m] < n_trials}
    if short:
        log.warning("trials finished short of %d: %s (see %s/<method>/summary.json); rerun to continue", n_trials,
                    ", ".join(f"{m} {n}" for m, n in short.items()), Layout(ctx.output_dir).optimize)
