"""Hyperparameter search with Optuna, one study per method, on the validation set only.

Each trial trains through the same path as a run (`train_method`) and reports validation
metrics at every evaluation, so the pruner can stop bad trials early. A trial that fails
(NaN loss, out of memory, an invalid combination) is recorded as failed with its reason
and the study goes on. Studies live in an Optuna storage: by default an SQLite file in
the output folder (a stopped study resumes with the same command), or any URL / journal
file given by `hpo_storage` / `--storage`, which several workers can share.

Outputs per method under OUTPUT_DIR/optimize/<method>/: best_params.yaml (a config
fragment), trials.csv, summary.json and plots; plus OUTPUT_DIR/optimize/tuned.yaml with
`method_overrides` for a "tuned vs tuned" comparison:
    python main.py --mode compare --config BASE.yaml --config OUTPUT_DIR/optimize/tuned.yaml
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
from transformers import TrainerCallback

from ..analysis.tuning_curves import curve_summary, plot_expected_validation
from ..config import Config, config_keys, default_of
from ..errors import ConfigError, UserError
from ..layout import CHECKPOINTS, Layout
from ..methods import get_method, method_names
from ..utils.io import write_json, write_yaml
from ..utils.memory import release_memory
from ..utils.processes import worker_id
from .run import RunContext, prepare_context, train_method
from ..training.trainer import planned_steps
from .outputs import claim_output_dir, release_output_dir
from .studies import (INTERRUPTED, StopAtCountedTrials, counted_trials, create_study, fail_orphaned_trials,
                      is_interrupted, make_storage)
from ..tracking.lifecycle import tracked

log = logging.getLogger(__name__)

# Per-method defaults come from the method registry (ranges that work for RoBERTa-base-sized encoders; epochs are
# per method, since adapters learn from fewer weights and need longer budgets); "common" is searched for every
# method with the same ranges (equal trial budgets per method).
COMMON_SEARCH_SPACE = {"batch_size": {"type": "categorical", "choices": [16, 32]}}


def default_search_space() -> dict[str, dict[str, dict]]:
    return {"common": copy.deepcopy(COMMON_SEARCH_SPACE),
            **{name: copy.deepcopy(get_method(name).search_space) for name in method_names()}}


DERIVED = {"lora_alpha_multiple"}


def search_space_for(config: Config, method: str) -> dict[str, dict]:
    """Defaults for `method` and `common`, with the config's `search_space` merged over them."""
    user = config.search_space or {}
    defaults = default_search_space()
    for section in user:
        if section not in defaults:
            raise ConfigError(f"search_space: unknown section '{section}'; allowed: {', '.join(defaults)}")
    # defaults first (common, then the method's), then the user's sections, which win over any default
    space = {**defaults["common"], **defaults.get(method, {}),
             **(user.get("common") or {}), **(user.get(method) or {})}
    space = {k: v for k, v in space.items() if v is not None}  # `key: null` removes a default dimension
    for name, spec in space.items():
        where = f"search_space.{method}.{name}"
        if name not in config_keys() and name not in DERIVED:
            raise ConfigError(f"{where}: not a config key")
        if not isinstance(spec, dict) or spec.get("type") not in ("float", "int", "categorical"):
            raise ConfigError(f"{where}: expected {{type: float|int|categorical, ...}}, got {spec!r}")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ConfigError(f"{where}: categorical needs a non-empty 'choices' list")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
                raise ConfigError(f"{where}: needs numbers low < high, got low={low!r} high={high!r}")
            if spec.get("log") and low <= 0:
                raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    return space


def warn_searched_settings(config: Config, spaces: dict[str, dict]) -> list[str]:
    """A value the user set (differs from the default) that the search space will replace in every trial."""
    warnings_ = []
    for method, space in spaces.items():
        method_config = config.for_method(method)
        for key in space:
            if key not in config_keys():
                continue
            if getattr(method_config, key) != default_of(key):
                warnings_.append(f"{method}: {key}={getattr(method_config, key)!r} is searched by Optuna and replaced in "
                                 f"every trial; to keep it fixed, set search_space: {{{method}: {{{key}: null}}}} "
                                 "(or common: for a shared dimension)")
    for w in warnings_:
        log.warning(w)
    return warnings_


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


def make_objective(ctx: RunContext, method: str, space: dict):
    metric = ctx.config.hpo_metric
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
        run_dir = Layout(ctx.output_dir).trial_dir(method, trial.number)
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


def optimize_to_count(study, ctx: RunContext, method: str, space: dict, n_trials: int) -> None:
    """Run trials of `study` in this process until it counts `n_trials` (every worker's trials count: the callback
    stops it at the total, so several processes or Ray workers sharing the study stop together)."""
    left = n_trials - counted_trials(study)
    if left > 0:
        study.optimize(make_objective(ctx, method, space), n_trials=left, catch=(Exception,), gc_after_trial=True,
                       callbacks=[StopAtCountedTrials(n_trials)])


def _write_outputs(study, method: str, space: dict, output_dir: Path) -> dict:
    import optuna

    layout = Layout(output_dir)
    out_dir = layout.study_dir(method)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(1 for t in trials if t.state == s) for s in optuna.trial.TrialState}
    states["INTERRUPTED"] = sum(1 for t in trials if t.state == optuna.trial.TrialState.FAIL and is_interrupted(t))
    states["FAIL"] -= states["INTERRUPTED"]
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    table = layout.study_trials_table(method)
    tmp = table.with_name(f".{table.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(table)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    pruned = [t for t in finished if t.state == optuna.trial.TrialState.PRUNED]
    # savings from pruning only: a complete trial that stopped early saved steps through early stopping
    budget = sum(t.user_attrs.get("steps_budget", 0) for t in finished)
    run = budget - sum(t.user_attrs.get("steps_budget", 0) - t.user_attrs.get("steps_run", 0) for t in pruned)
    summary: dict = {
        "method": method, "study_name": study.study_name, "trials": len(trials), "states": states,
        "metric": study.user_attrs.get("hpo_metric"), "best_value": None, "best_params": None, "search_space": space,
        "pruning": {"steps_run": run, "steps_budget_without_pruning": budget,
                    "saved_fraction": round(1 - run / budget, 4) if budget else 0.0},
        "failures": [{"number": t.number, "reason": t.user_attrs.get("fail_reason", "unknown")}
                     for t in trials if t.state == optuna.trial.TrialState.FAIL and not is_interrupted(t)],
    }
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    summary["expected_validation"] = curve_summary([t.value for t in complete], len(finished), len(pruned))
    if complete:
        best = study.best_trial
        params = suggest(optuna.trial.FixedTrial(best.params), space)
        summary.update(best_value=best.value, best_params=params, best_trial=best.number)
        write_yaml(layout.study_best_params(method), params)
    summary["plots"] = _plots(study, layout, method, len(complete))
    write_json(layout.study_summary(method), summary)
    return summary


def _plots(study, layout: Layout, method: str, n_complete: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    made = []
    for name, fn, needs in (("optimization_history", ovm.plot_optimization_history, 1),
                            ("param_importances", ovm.plot_param_importances, 2),
                            ("parallel_coordinate", ovm.plot_parallel_coordinate, 2)):
        if n_complete < needs:
            continue
        try:
            with warnings.catch_warnings():  # "experimental" notices and flat-axis warnings on small studies
                warnings.simplefilter("ignore")
                ax = fn(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            fig.savefig(layout.study_plot(method, name), dpi=100)
            plt.close(fig)
            made.append(f"{name}.png")
        except Exception as exc:  # e.g. importances need varying parameters
            log.warning("optuna plot %s skipped: %s", name, exc)
    return made


def run_optimization(config: Config, methods: list[str], n_trials: int | None = None,
                     storage_url: str | None = None, output_dir: Path | None = None,
                     overwrite: bool = False, context: RunContext | None = None) -> dict[str, dict]:
    """Run (or resume) one study per method up to `n_trials` finished trials each.

    `context`: a folder the caller already validated and claimed (a tuned comparison, which pre-registers in it
    before the first trial); the caller keeps the folder's lock.
    """
    if context is not None:
        return _run_optimization(config, methods, n_trials, storage_url, context.output_dir, overwrite, context)
    try:
        return _run_optimization(config, methods, n_trials, storage_url, output_dir, overwrite)
    finally:
        release_output_dir(Path(output_dir or config.output_dir))


def _run_optimization(config: Config, methods: list[str], n_trials: int | None, storage_url: str | None,
                      output_dir: Path | None, overwrite: bool,
                      context: RunContext | None = None) -> dict[str, dict]:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we log failures ourselves, in one line
    output_dir = Path(output_dir or config.output_dir)
    n_trials = config.hpo_trials if n_trials is None else n_trials
    spaces = {m: search_space_for(config, m) for m in methods}  # every error before any training
    if config.hpo_workers > 1:
        if config.execution_backend != "ray":
            raise UserError(f"hpo_workers {config.hpo_workers} (--workers) runs trial workers as Ray tasks: add "
                            "--backend ray, or start several `optimize` processes on one shared --storage")
        from .ray_trials import check_shared_storage

        check_shared_storage(storage_url or config.hpo_storage, config.hpo_workers)
    warn_searched_settings(config, spaces)

    # both paths check the folder first; it is claimed (and cleared with --overwrite) only after model and
    # data were validated
    ctx = context or (prepare_context(config, output_dir=output_dir, overwrite=overwrite, methods=methods)
                      if n_trials else None)
    if ctx is None:
        claim_output_dir(config, output_dir, overwrite)
    storage = make_storage(storage_url or config.hpo_storage, output_dir)  # one per command: after any --overwrite
    studies = {m: create_study(config.search, config.seed, m, output_dir, storage_url, spaces[m], storage)
               for m in methods}
    if n_trials == 0:
        log.info("created %s; no trials requested", ", ".join(s.study_name for s in studies.values()))
    summaries = {}
    on_ray = bool(n_trials) and config.execution_backend == "ray" and config.hpo_workers > 1
    if on_ray:  # every method's trial workers side by side (each fails its study's orphans), then the outputs below
        from .ray_trials import run_trial_workers

        run_trial_workers(ctx, studies, spaces, storage_url, n_trials)
    for method, study in studies.items():
        fail_orphaned_trials(study, storage)
        study_dir = Layout(output_dir).study_dir(method)
        if not n_trials:
            summaries[method] = _write_outputs(study, method, spaces[method], output_dir)
            continue
        done = counted_trials(study)
        log.info("%s: %d of %d trials finished; running the rest", study.study_name, min(done, n_trials), n_trials)
        start = lambda: ctx.hub.start_parent(f"study-{study.study_name}", config,  # noqa: E731
                                             {"kind": "study", "method": method})
        with tracked(start, ctx.hub.end_parent) as outcome:
            if not on_ray:
                optimize_to_count(study, ctx, method, spaces[method], n_trials)
            summaries[method] = _write_outputs(study, method, spaces[method], output_dir)
            outcome.metrics = {"best_value": summaries[method]["best_value"] or 0.0,
                               "steps_saved_fraction": summaries[method]["pruning"]["saved_fraction"]}
            outcome.artifacts = [study_dir]
    plot = plot_expected_validation({m: s["expected_validation"] for m, s in summaries.items()}, config.hpo_metric,
                                    Layout(output_dir).expected_validation_plot)
    for s in summaries.values():
        s["expected_validation_plot"] = str(plot) if plot else None
    tuned = {m: s["best_params"] for m, s in summaries.items() if s["best_params"]}
    if tuned:
        write_yaml(Layout(output_dir).tuned, {"method_overrides": tuned})
    return summaries
