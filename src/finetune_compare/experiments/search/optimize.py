"""Hyperparameter search with Optuna, one study per method, on the validation set only.

Each trial (experiments/search/trials.py) trains through the same path as a run (`train_method`) and reports validation
metrics at every evaluation, so the pruner can stop bad trials early. A trial that fails
(NaN loss, out of memory, an invalid combination) is recorded as failed with its reason
and the study goes on. Studies live in an Optuna storage: by default an SQLite file in
the output folder (a stopped study resumes with the same command), or any URL / journal
file given by `hpo_storage` / `--storage`, which several workers can share.

Outputs per method under OUTPUT_DIR/optimize/<method>/: best_params.yaml (a config
fragment), trials.csv, summary.json and plots; plus OUTPUT_DIR/optimize/tuned.yaml with
`method_overrides` for a "tuned vs tuned" comparison:
    finetune-compare compare --config BASE.yaml --config OUTPUT_DIR/optimize/tuned.yaml
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path

from ...analysis.fairness_checks import deciding_search, search_edges, widened_space
from ...analysis.tuning_curves import curve_summary, plot_expected_validation
from ...config import Config, config_keys, default_of
from ...errors import ConfigError, UserError
from ...layout import Layout
from ...methods import get_method, method_names
from ...tracking.lifecycle import tracked
from ...utils.io import write_json, write_yaml
from ..study.ownership import FolderGuard
from ..execution.context import RunContext, prepare_context
from .studies import counted_trials, create_study, fail_orphaned_trials, is_interrupted, make_storage
from .trials import optimize_to_count, suggest

log = logging.getLogger(__name__)

# Per-method defaults come from the method registry (ranges that work for RoBERTa-base-sized encoders; epochs are
# per method, since adapters learn from fewer weights and need longer budgets); "common" is searched for every
# method with the same ranges (equal trial budgets per method).
COMMON_SEARCH_SPACE = {"batch_size": {"type": "categorical", "choices": [16, 32]}}


def default_search_space() -> dict[str, dict[str, dict]]:
    return {"common": copy.deepcopy(COMMON_SEARCH_SPACE),
            **{name: copy.deepcopy(get_method(name).search_space) for name in method_names()}}


DERIVED = {"lora_alpha_multiple"}
LATER_SEARCH_SEED_OFFSET = 1000


def search_space_for(config: Config, method: str) -> dict[str, dict]:
    """Defaults for `method` and `common`, with the config's `search_space` merged over them."""
    user = config.search.search_space or {}
    defaults = default_search_space()
    for section in user:
        if section not in defaults:
            raise ConfigError(f"search_space: unknown section '{section}'; allowed: {', '.join(defaults)}")
    # a variant's own settings are what make it that variant: its base's default space leaves them out
    fixed = set(config.experiment.method_variants.get(method, {})) - {"base"}
    method_defaults = {k: v for k, v in defaults.get(method, {}).items() if k not in fixed}
    # defaults first (common, then the method's), then the user's sections, which win over any default
    space = {**defaults["common"], **method_defaults, **(user.get("common") or {}), **(user.get(method) or {})}
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


def _write_outputs(study, method: str, space: dict, output_dir: Path, search: str | None = None) -> dict:
    import optuna

    layout = Layout(output_dir)
    out_dir = layout.study_dir(method, search)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(1 for t in trials if t.state == s) for s in optuna.trial.TrialState}
    states["INTERRUPTED"] = sum(1 for t in trials if t.state == optuna.trial.TrialState.FAIL and is_interrupted(t))
    states["FAIL"] -= states["INTERRUPTED"]
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    table = layout.study_trials_table(method, search)
    tmp = table.with_name(f".{table.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(table)
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    pruned = [t for t in finished if t.state == optuna.trial.TrialState.PRUNED]
    # savings from pruning only: a complete trial that stopped early saved steps through early stopping
    budget = sum(t.user_attrs.get("steps_budget", 0) for t in finished)
    run = budget - sum(t.user_attrs.get("steps_budget", 0) - t.user_attrs.get("steps_run", 0) for t in pruned)
    summary: dict = {
        "method": method, **({"search": search} if search else {}), "study_name": study.study_name,
        "trials": len(trials), "states": states,
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
        # a best value at an edge of its range: the best may lie outside the space (analysis/fairness_checks.py)
        summary.update(best_value=best.value, best_params=params, best_trial=best.number,
                       edges=search_edges(space, best.params))
        write_yaml(layout.study_best_params(method, search), params)
    summary["plots"] = _plots(study, layout, method, len(complete), search)
    write_json(layout.study_summary(method, search), summary)
    return summary


def _plots(study, layout: Layout, method: str, n_complete: int, search: str | None = None) -> list[str]:
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
            fig.savefig(layout.study_plot(method, name, search), dpi=100)
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
    n_trials = config.search.hpo_trials if n_trials is None else n_trials
    spaces = checked_spaces(config, methods, storage_url)  # every error before any training
    if context is not None:
        summaries = _run_optimization(config, methods, n_trials, storage_url, spaces, context.output_dir, context)
        extended = extend_at_edges(config, summaries, n_trials, storage_url, context) \
            if config.search.tune_extend and n_trials else {}
        if extended:
            summaries.update(extended)
            write_tuned(config, summaries, context.output_dir)
        return summaries
    with FolderGuard(config, output_dir, overwrite) as folder:
        # claimed (and cleared with --overwrite) only after model and data were validated
        ctx = prepare_context(config, methods=methods, folder=folder) if n_trials else None
        if ctx is None:
            folder.claim()
        return _run_optimization(config, methods, n_trials, storage_url, spaces, folder.out, ctx)


def checked_spaces(config: Config, methods: list[str], storage_url: str | None) -> dict[str, dict]:
    """Each method's search space, and the trial workers' settings, checked before anything else."""
    spaces = {m: search_space_for(config, m) for m in methods}
    if config.search.hpo_workers > 1:
        if config.execution.execution_backend != "ray":
            raise UserError(f"hpo_workers {config.search.hpo_workers} (--workers) runs trial workers as Ray tasks: add "
                            "--backend ray, or start several `optimize` processes on one shared --storage")
        from .ray_trials import check_shared_storage

        check_shared_storage(storage_url or config.search.hpo_storage, config.search.hpo_workers)
    warn_searched_settings(config, spaces)
    return spaces


def extend_at_edges(config: Config, summaries: dict[str, dict], n_trials: int, storage_url: str | None,
                    ctx: RunContext) -> dict[str, dict]:
    """`tune_extend`: each method whose best setting lies at an edge of its space is tuned once more, from scratch,
    with the same number of trials over its space widened at those edges (analysis/fairness_checks.py). The better
    of the two searches' best settings (on validation) is the method's tuned setting; both searches are kept
    (optimize/<method>/ and optimize/<method>/extended/) and the report states the method's trials in all."""
    bounds = {k: (key.field.metadata.get("min"), key.field.metadata.get("max")) for k, key in config_keys().items()}
    out = {}
    for method, summary in summaries.items():
        edges = summary.get("edges") or []
        if not edges:
            continue
        space, notes = widened_space(summary["search_space"], edges, bounds)
        first = Layout(ctx.output_dir).study_summary(method)
        write_json(first, {**summary, "widened": notes})
        if space == summary["search_space"]:
            log.warning("%s: best setting at an edge of its search (%s), which cannot be widened: not tuned again",
                        method, "; ".join(notes))
            continue
        log.info("%s: best setting at an edge of its search; tuning again with %d trials over the widened space (%s)",
                 method, n_trials, "; ".join(notes))
        extended = _run_optimization(config, [method], n_trials, storage_url, {method: space}, ctx.output_dir, ctx,
                                     search="extended")[method]
        decided = deciding_search(summary, extended)
        decided_by = "widened" if decided is extended else "first"
        write_json(first, {**summary, "widened": notes, "decided_by": decided_by})  # what the runs then used
        log.info("%s: the %s search decides (best validation %s of the first search, %s of the widened one)", method,
                 decided_by, summary["best_value"], extended["best_value"])
        out[method] = decided
    return out


def _run_optimization(config: Config, methods: list[str], n_trials: int, storage_url: str | None,
                      spaces: dict[str, dict], output_dir: Path, ctx: RunContext | None,
                      search: str | None = None) -> dict[str, dict]:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we log failures ourselves, in one line
    storage = make_storage(storage_url or config.search.hpo_storage, output_dir)  # one per command, after --overwrite
    # a later search gets a sampler seed of its own, so its first (random) draws do not repeat the first search's
    seed = config.experiment.seed + (LATER_SEARCH_SEED_OFFSET if search else 0)
    studies = {m: create_study(config.search, seed, m, output_dir, storage_url, spaces[m], storage, later_search=search)
               for m in methods}
    if n_trials == 0:
        log.info("created %s; no trials requested", ", ".join(s.study_name for s in studies.values()))
    summaries = {}
    on_ray = (bool(n_trials) and not search and config.execution.execution_backend == "ray"
              and config.search.hpo_workers > 1)
    if on_ray:  # every method's trial workers side by side (each fails its study's orphans), then the outputs below
        from .ray_trials import run_trial_workers

        run_trial_workers(ctx, studies, spaces, storage_url, n_trials)
    for method, study in studies.items():
        fail_orphaned_trials(study, storage)
        study_dir = Layout(output_dir).study_dir(method, search)
        if not n_trials:
            summaries[method] = _write_outputs(study, method, spaces[method], output_dir, search)
            continue
        done = counted_trials(study)
        log.info("%s: %d of %d trials finished; running the rest", study.study_name, min(done, n_trials), n_trials)
        start = lambda: ctx.hub.start_parent(f"study-{study.study_name}", config,  # noqa: E731
                                             {"kind": "study", "method": method})
        with tracked(start, ctx.hub.end_parent) as outcome:
            if not on_ray:
                optimize_to_count(study, ctx, method, spaces[method], n_trials, search)
            summaries[method] = _write_outputs(study, method, spaces[method], output_dir, search)
            outcome.metrics = {"best_value": summaries[method]["best_value"] or 0.0,
                               "steps_saved_fraction": summaries[method]["pruning"]["saved_fraction"]}
            outcome.artifacts = [study_dir]
    if not search:  # a later search of one method: the caller writes them from every method's deciding search
        write_tuned(config, summaries, output_dir)
    return summaries


def write_tuned(config: Config, summaries: dict[str, dict], output_dir: Path) -> None:
    """tuned.yaml (each method's best settings) and the expected-validation plot, from each method's deciding
    search (the widened one where `tune_extend` ran one)."""
    plot = plot_expected_validation({m: s["expected_validation"] for m, s in summaries.items()},
                                    config.search.hpo_metric,
                                    Layout(output_dir).expected_validation_plot)
    for s in summaries.values():
        s["expected_validation_plot"] = str(plot) if plot else None
    tuned = {m: s["best_params"] for m, s in summaries.items() if s["best_params"]}
    if tuned:
        write_yaml(Layout(output_dir).tuned, {"method_overrides": tuned})
