"""One search trial, and a study's trials run in this process until it counts enough: what `optimize` runs locally
and what each Ray trial worker runs (experiments/search/ray_trials.py). Apart from the command itself (experiments/
optimize.py), so that the Ray side needs no import of the command and the command none of it at import time.

Each trial trains through the same path as a run (`train_method`) and reports validation metrics at every
evaluation, so the pruner can stop bad trials early; a trial that fails is recorded with its reason.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from typing import Any

import psutil
from transformers import TrainerCallback

from ...config import Config
from ...errors import UserError
from ...layout import CHECKPOINTS, Layout
from ...training.trainer import planned_steps
from ...utils.memory import release_memory
from ...utils.processes import worker_id
from ..execution.context import RunContext
from ..execution.run import train_method
from .studies import INTERRUPTED, StopAtCountedTrials, counted_trials

log = logging.getLogger(__name__)


def suggest(trial, space: dict[str, dict]) -> dict[str, Any]:
    """Config values for one trial. List choices (target modules) are suggested by name."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            choices = spec["choices"]
            if any(isinstance(c, list) for c in choices):
                # Optuna's categorical values must be scalars: suggest "query,value" and split it
                picked = trial.suggest_categorical(name, [",".join(map(str, c)) for c in choices])
                values[name] = picked.split(",")
            else:
                values[name] = trial.suggest_categorical(name, choices)
    if "lora_alpha_multiple" in values:
        values["lora_alpha"] = int(values.pop("lora_alpha_multiple") * values.get("lora_r", 8))
    return values


class PruningCallback(TrainerCallback):
    """Reports the validation metric to Optuna at every evaluation; raises TrialPruned when told to."""

    def __init__(self, trial, metric: str):
        self.trial = trial
        self.metric = metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        import optuna

        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None:
            return
        self.trial.report(float(value), step=state.global_step)
        self.trial.set_user_attr("steps_run", state.global_step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {state.global_step} ({self.metric}={value:.4f})")


def _steps_budget(config: Config, n_train: int) -> int:
    return planned_steps(config.training, n_train)


def make_objective(ctx: RunContext, method: str, space: dict, search: str | None = None):
    metric = ctx.config.search.hpo_metric
    n_train = len(ctx.tokenized.train.examples)

    def objective(trial) -> float:
        trial.set_user_attr("worker", worker_id())  # lets a later start recognise a trial whose process died
        base = ctx.config.for_method(method)
        try:
            trial_config = base.replace(**suggest(trial, space))
        except UserError as exc:  # an invalid combination of suggested values
            trial.set_user_attr("fail_reason", str(exc))
            log.warning("%s trial %d: invalid parameters (recorded as failed): %s", method, trial.number, exc)
            raise
        trial.set_user_attr("steps_budget", _steps_budget(trial_config, n_train))
        run_dir = Layout(ctx.output_dir).trial_dir(method, trial.number, search)
        start = time.perf_counter()
        ctx.hub.start_run(f"{method}-trial{trial.number}", trial_config, {"method": method, "trial": trial.number})
        status, final = "FAILED", {}
        try:
            # a trial stopped by a signal is not counted and a new one takes its place, so a checkpoint would never
            # be resumed: trials are not checkpointed
            out = train_method(ctx, method, trial_config.seed, trial_config.replace(save_checkpoints=False), run_dir,
                               extra_callbacks=(PruningCallback(trial, metric), ctx.hub.callback()),
                               label=f"{method} trial {trial.number}",
                               unkept="is not counted: the rerun runs a new trial in its place")
            trial.set_user_attr("steps_run", out.trainer.state.global_step)
            best = out.best
            history = [e for e in out.trainer.state.log_history if f"eval_{metric}" in e]
            value = max(e[f"eval_{metric}"] for e in history) if history else float("nan")
            trial.set_user_attr("train_seconds", round(time.perf_counter() - start, 2))
            trial.set_user_attr("peak_rss_mb", out.memory.summary()["peak_rss_mb"])
            del out, best
            if not math.isfinite(value):
                raise UserError(f"trial {trial.number}: validation {metric} is not a number")
            status, final = "FINISHED", {f"best_{metric}": value}
            log.info("%s trial %d: complete, best validation %s %.4f (%s)", method, trial.number, metric, value,
                     ", ".join(f"{k}={v}" for k, v in trial.params.items()))
            return value
        except BaseException as exc:
            import optuna

            if isinstance(exc, optuna.TrialPruned):
                status = "FINISHED"  # pruned is a normal outcome; the tag says so
                final = {"pruned": 1.0}
                log.info("%s trial %d: pruned (%s) (%s)", method, trial.number, exc,
                         ", ".join(f"{k}={v}" for k, v in trial.params.items()))
            elif isinstance(exc, KeyboardInterrupt):
                status = "KILLED"
                trial.set_user_attr("fail_reason", INTERRUPTED)  # Optuna marks it FAIL; it is not counted
            else:
                reason = f"{type(exc).__name__}: {str(exc)[:300]}"
                trial.set_user_attr("fail_reason", reason)
                log.warning("%s trial %d failed (recorded; the study goes on): %s", method, trial.number, reason)
            raise
        finally:
            ctx.hub.end_run(status, final)
            shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # the Trainer's output folder (never saved to)
            for folder in (run_dir, run_dir.parent):  # trial-N/ and trials/ hold nothing once checkpoints are gone
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            # model, optimizer and caches go before the next trial
            release_memory()
            trial.set_user_attr("rss_mb_after", round(psutil.Process().memory_info().rss / 2**20, 1))

    return objective


def optimize_to_count(study, ctx: RunContext, method: str, space: dict, n_trials: int,
                      search: str | None = None) -> None:
    """Run trials of `study` in this process until it counts `n_trials` (every worker's trials count: the callback
    stops it at the total, so several processes or Ray workers sharing the study stop together)."""
    left = n_trials - counted_trials(study)
    if left > 0:
        study.optimize(make_objective(ctx, method, space, search), n_trials=left, catch=(Exception,), gc_after_trial=True,
                       callbacks=[StopAtCountedTrials(n_trials)])
