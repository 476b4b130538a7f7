"""The runs of a study, worked out once: every command that trains (compare, tuned compare, sweep), the cost plan and
the progress lines read them from here instead of deriving seeds, pairs and finished runs each on its own.

A comparison of M methods over `num_runs` paired seeds is M x num_runs runs: pair k trains every method with seed
`seed + k` (and, with resample_data_per_run, its own data draw). Each run is in one state, read from its folder:
- done: its metrics.json is whole (a complete run is never redone);
- failed: it has a failure.json (every attempt failed on Ray before): it is trained again;
- to train: anything else.
A sweep is one such plan per grid point (`sweep_points`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ...config import Config
from ...errors import ConfigError
from ...layout import FAILURE, METRICS, Layout
from ...sweep_grid import grid_points, point_name
from ...utils.io import read_json

DONE, FAILED, TO_TRAIN = "done", "failed", "to_train"


@dataclass(frozen=True)
class RunSpec:
    """One (method, seed) run: its pair, the config it trains with (the method's own settings applied), its
    folder, and its state (DONE, FAILED or TO_TRAIN)."""
    method: str
    seed: int
    pair: int
    config: Config
    folder: Path
    state: str


@dataclass(frozen=True)
class PairPlan:
    """Pair k of a comparison: its seed and the methods whose run is not complete yet (what the executors train)."""
    k: int
    seed: int
    to_train: tuple[str, ...]


@dataclass(frozen=True)
class StudyPlan:
    """A comparison's runs pair by pair (seed-major: an interruption leaves complete pairs), its base-model row and
    its tuning studies."""
    config: Config
    output_dir: Path
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    runs: tuple[RunSpec, ...]
    base_done: bool  # the base model's row is in the folder already (it is evaluated only when asked for)
    tune_trials: dict[str, int]  # finished tuning trials each method's study is run to (0: no tuning)

    def pairs(self) -> list[PairPlan]:
        return [PairPlan(k, seed, tuple(r.method for r in self.runs if r.pair == k and r.state != DONE))
                for k, seed in enumerate(self.seeds)]

    def seeds_in(self, method: str, *states: str) -> list[int]:
        return [r.seed for r in self.runs if r.method == method and r.state in states]

    def pending(self) -> list[RunSpec]:
        """The runs to train, in the order the executors submit them (pair by pair)."""
        return [r for r in self.runs if r.state != DONE]

    def with_config(self, config: Config) -> StudyPlan:
        """The same runs with another config's settings (a tuned comparison: each method's best settings)."""
        runs = tuple(dataclasses.replace(r, config=config.for_method(r.method)) for r in self.runs)
        return dataclasses.replace(self, config=config, runs=runs)


def runs_per_method(plans: list[StudyPlan]) -> dict[str, int]:
    """Each method's runs over the plans (a sweep's points): what the command's progress counts to."""
    counts: dict[str, int] = {}
    for plan in plans:
        for run in plan.runs:
            counts[run.method] = counts.get(run.method, 0) + 1
    return counts


def seeds_text(plans: list[StudyPlan]) -> str:
    """How many paired seeds the plans run (a sweep's points all run the same number: config/rules.py)."""
    return str(len(plans[0].seeds))


def run_dir_for(output_dir: Path, method: str, seed: int) -> Path:
    return Layout(output_dir).run_dir(method, seed)


def load_completed(run_dir: Path) -> dict | None:
    """The run's metrics when its metrics.json is whole (written last, atomically); None otherwise."""
    path = run_dir / METRICS
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def run_state(run_dir: Path) -> str:
    if load_completed(run_dir) is not None:
        return DONE
    return FAILED if (run_dir / FAILURE).is_file() else TO_TRAIN


def study_plan(config: Config, output_dir: str | Path | None = None, methods: list[str] | None = None,
               resumes: bool = True) -> StudyPlan:
    """The one place seeds, pairs and run states come from. `resumes=False`: every run to train, no run folder read
    (a folder whose runs will not be kept, or a caller that only counts the runs)."""
    out = Path(output_dir or config.experiment.output_dir)
    methods = tuple(methods or config.method.methods)
    seeds = tuple(config.experiment.seed + k for k in range(config.experiment.num_runs))
    runs = []
    for k, seed in enumerate(seeds):
        for method in methods:
            folder = run_dir_for(out, method, seed)
            runs.append(RunSpec(method, seed, k, config.for_method(method), folder,
                                run_state(folder) if resumes else TO_TRAIN))
    base_done = resumes and load_completed(Layout(out).base_run) is not None
    return StudyPlan(config, out, methods, seeds, tuple(runs), base_done,
                     {m: config.search.tune_trials for m in methods})


def sweep_points(config: Config) -> list[tuple[dict, Config]]:
    """Every grid point (in the order given, first key slowest) with the config it runs."""
    if not config.experiment.sweep:
        raise ConfigError("the sweep command needs a grid: --sweep KEY=V1,V2,... (repeatable for a second key) "
                          "or `sweep: {KEY: [V1, V2]}` in the config")
    out = []
    layout = Layout(config.experiment.output_dir)
    names: dict[str, dict] = {}
    for values in grid_points(config.experiment.sweep):
        name = point_name(values)
        if name in names:  # e.g. model_name /m/a/b and /m/a_b: '/' becomes '_' in a folder name
            raise ConfigError(f"sweep points {names[name]} and {values} would share the point folder '{name}'; "
                              "give the values names that differ in letters, digits, '.', '-' or '_'")
        names[name] = values
        point = config.replace(sweep={}, output_dir=str(layout.point_dir(name)), **values)
        out.append(({k: getattr(point, k) for k in values}, point))
    return out
