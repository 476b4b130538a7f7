"""`finetune-compare plan --config X [--backend ray]`: what `compare` (or `sweep`, when the config has a grid) would
run before anything trains: the runs it would execute and how many are done already, the time and peak memory of one
run of each method on this machine (scaled from a short probe, `cost_probe`), and the wall time that makes on the
local backend or on the resources the Ray cluster reports.

It trains only the probe, in a temporary folder, and writes nothing into the results folder.
"""

from __future__ import annotations

import dataclasses

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...config import Config
from ...data.build import load_pools
from ...errors import UserError
from ...layout import Layout
from ...sweep_grid import point_name
from ...training.trainer import evaluation_interval, planned_steps
from .cost_probe import PROBE_STEPS, Probe, probe_method, step_tokens
from ..study.ownership import check_output_dir
from .plan_text import FOLDER_STATES
from ..execution.context import RunContext, build_context
from ..study.study_plan import DONE, FAILED, TO_TRAIN, StudyPlan, study_plan, sweep_points

log = logging.getLogger(__name__)

# keys that change how many steps and evaluations a run takes, not what one step costs: points that differ only in
# these (or in data keys) share one probe
COUNT_KEYS = ("num_epochs", "budget", "budget_unit", "patience", "evaluations_per_epoch", "warmup_ratio")


@dataclass
class PointPlan:
    """One comparison's share of the plan: its runs and their states (the study's plan, as the command would build
    it), the tuning trials still to run, and what each of its runs would take."""
    name: str | None  # the sweep point's folder name; None for a compare
    study: StudyPlan
    folder: str  # what the command would do with the folder, in words
    base_fits: bool  # the model's head predicts the data's classes: the base row can be evaluated
    trials_to_run: dict[str, int] = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)  # examples and real tokens per split
    data_seconds: float = 0.0
    run_seconds: dict[str, float] = field(default_factory=dict)  # one run of each method, estimated
    run_seconds_range: dict[str, tuple[float, float]] = field(default_factory=dict)  # over the probe's step spread
    trial_seconds: dict[str, float] = field(default_factory=dict)
    probes: dict[str, int] = field(default_factory=dict)  # method -> index of its probe in the plan's list

    @property
    def config(self) -> Config:
        return self.study.config

    @property
    def seeds(self) -> list[int]:
        return list(self.study.seeds)

    @property
    def done(self) -> dict[str, list[int]]:
        return {m: self.study.seeds_in(m, DONE) for m in self.study.methods}

    @property
    def to_train(self) -> dict[str, list[int]]:
        return {m: self.study.seeds_in(m, FAILED, TO_TRAIN) for m in self.study.methods}

    @property
    def failed_before(self) -> int:
        return sum(1 for r in self.study.runs if r.state == FAILED)

    @property
    def base_to_evaluate(self) -> bool:
        return self.config.experiment.evaluate_base_model and self.base_fits and not self.study.base_done

    def pending(self) -> list[tuple[str, int]]:
        """The runs to train, in the order the executor submits them (pair by pair)."""
        return [(r.method, r.seed) for r in self.study.pending()]


def _folder_state(config: Config, out: Path) -> tuple[str, str]:
    """(check_output_dir's state or 'stop', in words)."""
    try:
        state = check_output_dir(config, out)
    except UserError as exc:  # the command itself would stop here: say so, and plan as if the folder were new
        return "stop", f"the command would stop: {exc}"
    return state, FOLDER_STATES.get(state, state)


def _trials_done(config: Config, out: Path, method: str) -> int | None:
    """Trials of `method`'s tuning study that count toward tune_trials (0 when there is no study yet)."""
    from ..search.studies import counted_trials, make_storage

    url = config.search.hpo_storage
    if url is None:
        db = Layout(out).optuna_db
        if not db.is_file():
            return 0
        url = f"sqlite:///{db.resolve()}"
    elif url.startswith("journal:") and not Path(url.removeprefix("journal:")).is_file():
        return 0
    import optuna

    try:
        study = optuna.load_study(study_name=f"{config.search.hpo_study_name}-{method}", storage=make_storage(url, out))
    except KeyError:
        return 0
    except Exception:  # noqa: BLE001 - an unreadable storage: the count is unknown, the plan goes on
        return None
    return counted_trials(study)


def count_point(name: str | None, config: Config, base_fits: bool) -> PointPlan:
    out = Path(config.experiment.output_dir)
    state, text = _folder_state(config, out)
    resumes = state == "resume"  # the folder holds this configuration's runs: the done ones are kept
    plan = PointPlan(name, study_plan(config, out, resumes=resumes), text, base_fits)
    for method, trials in plan.study.tune_trials.items():
        if trials:
            counted = _trials_done(config, out, method) if resumes else 0
            plan.trials_to_run[method] = max(0, trials - (counted or 0))
    return plan


def _probe_key(config: Config, method: str) -> str:
    c = config.for_method(method)
    training = {k: v for k, v in c.training.to_dict().items() if k not in COUNT_KEYS}
    return repr((method, c.model.to_dict(), c.method.to_dict(), training))


def run_estimate(probe: Probe, config: Config, sizes: dict, tokens: list[int]) -> tuple[float, float]:
    """(a run, a tuning trial) in seconds: set-up and first step, each later step from the probe's fit and the
    padded tokens of the run's own batch (`tokens`, one per planned step), every validation pass, and (runs only)
    the test pass; a time budget caps the training part."""
    t = config.training
    evaluations = len(tokens) // evaluation_interval(t, sizes["train"])
    validation = sizes["validation_tokens"] * probe.eval_seconds_per_token
    steps = sum(probe.seconds_per_step + probe.seconds_per_token * n for n in tokens[1:])
    training = probe.startup_seconds + steps + evaluations * validation
    if t.budget_unit == "seconds":  # the budget counts evaluations too; one more runs when it stops the run
        training = min(training, t.budget + validation)
    return training + sizes["test_tokens"] * probe.eval_seconds_per_token, training


def scaled_probe(probe: Probe, factor: float) -> Probe:
    """The probe with every training step `factor` times its fitted time (evaluation and set-up as measured)."""
    return dataclasses.replace(probe, seconds_per_step=probe.seconds_per_step * factor,
                               seconds_per_token=probe.seconds_per_token * factor)


def _task_threads(config: Config) -> int | None:
    """The torch threads a run gets: a Ray task's cpus_per_run unless num_threads says otherwise."""
    if config.execution.execution_backend == "ray":
        return config.training.num_threads or config.execution.execution_cpus_per_run
    return config.training.num_threads


def measure_point(plan: PointPlan, ctx: RunContext, probes: dict[str, Probe], steps: int) -> None:
    """The point's sizes and per-run estimates; each distinct (method, model, training) is probed once."""
    tok = ctx.tokenized
    plan.sizes = {"train": len(tok.train.examples), "validation": len(tok.validation.examples),
                  "test": len(tok.test.examples), "validation_tokens": tok.validation.num_tokens,
                  "test_tokens": tok.test.num_tokens, "max_length": tok.max_length}
    for method in plan.config.method.methods:
        if not plan.to_train[method] and not plan.trials_to_run.get(method):
            continue
        key = _probe_key(plan.config, method)
        if key not in probes:
            log.info("probing %s: %d steps on this machine (%s, %s)", method, steps, ctx.device, ctx.precision)
            probes[key] = probe_method(ctx, method, steps, _task_threads(plan.config))
        plan.probes[method] = list(probes).index(key)
        config = plan.config.for_method(method)
        tokens = step_tokens(ctx, config, planned_steps(config.training, plan.sizes["train"]))
        plan.run_seconds[method], plan.trial_seconds[method] = run_estimate(probes[key], config, plan.sizes, tokens)
        low, high = probes[key].step_ratio_range  # every step as slow as the probe's fastest / slowest, relatively
        plan.run_seconds_range[method] = (
            run_estimate(scaled_probe(probes[key], low), config, plan.sizes, tokens)[0],
            run_estimate(scaled_probe(probes[key], high), config, plan.sizes, tokens)[0])


def build_plan(config: Config, probe_steps: int = PROBE_STEPS) -> dict:
    """Everything `plan --config` prints, as data: the points, their counts and estimates, the probes, and the
    wall time on the chosen backend."""
    from .wall_time import ray_resources, wall_time

    is_sweep = bool(config.experiment.sweep)
    points = [(point_name(values), point) for values, point in sweep_points(config)] if is_sweep else [(None, config)]
    cluster = ray_resources(config)  # before the probes: a cluster no run fits stops the plan at once
    pools = load_pools(config.data)  # once, as the sweep does
    probes: dict[str, Probe] = {}
    plans = []
    for name, point in points:
        start = time.perf_counter()
        ctx = build_context(point, Path(point.experiment.output_dir), pools=pools)  # checks model, data; writes nothing
        plan = count_point(name, point, ctx.provider.head_fits)
        plan.data_seconds = time.perf_counter() - start
        measure_point(plan, ctx, probes, probe_steps)
        plans.append(plan)
        del ctx
    return {"command": "sweep" if is_sweep else "compare", "config": config,
            "folder": _folder_state(config, Path(config.experiment.output_dir))[1] if is_sweep else plans[0].folder,
            "points": plans, "probes": list(probes.values()), "probe_steps": probe_steps,
            "wall": wall_time(config, plans, list(probes.values()), cluster)}


def plan_json(plan: dict) -> dict:
    """The plan as written by `plan --json FILE` (seconds, MB; estimates are labelled as such)."""
    points = [{"point": p.name, "folder": p.folder, "sizes": p.sizes, "data_seconds": round(p.data_seconds, 2),
               "runs_done": p.done, "runs_to_train": p.to_train, "failed_before": p.failed_before,
               "trials_to_run": p.trials_to_run, "estimated_run_seconds": {m: round(v, 1) for m, v in
                                                                          p.run_seconds.items()},
               "estimated_run_seconds_range": {m: [round(v, 1) for v in r] for m, r in p.run_seconds_range.items()},
               "estimated_trial_seconds": {m: round(v, 1) for m, v in p.trial_seconds.items()},
               "probe_of": {m: i for m, i in p.probes.items()}} for p in plan["points"]]
    wall = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in plan["wall"].items() if k != "ray"}
    if "ray" in plan["wall"]:
        wall["ray"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in plan["wall"]["ray"].items()}
    config = plan["config"]
    return {"command": plan["command"], "output_dir": config.experiment.output_dir, "folder": plan["folder"],
            "backend": config.execution.execution_backend, "probe_steps": plan["probe_steps"],
            "probes": [{**p.to_json(), "busy": p.busy} for p in plan["probes"]], "points": points,
            "estimated_wall": wall}
