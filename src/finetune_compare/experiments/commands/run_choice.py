"""Which run a command means: a run folder, or a comparison folder plus a method (and a seed, or the median run).

Reads files only (no torch), so a wrong folder or method answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...analysis.run_files import read_json, read_record
from ...errors import UserError
from ...evaluation.run_record import RunRecord
from ...layout import METRICS, Layout, seed_of
from ...metric_names import recorded_key

DEFAULT_PRIMARY = "macro_f1"


@dataclass(frozen=True)
class ChosenRun:
    folder: Path
    record: RunRecord
    comparison: Path | None  # the comparison folder the run belongs to, when there is one
    why: str  # how it was chosen, said to the user


def comparison_primary(root: Path) -> str:
    """The comparison's primary metric (comparison.json), or the default before a report was built."""
    layout = Layout(root)
    if layout.comparison.is_file():
        return str(read_json(layout.comparison).get("primary_metric") or DEFAULT_PRIMARY)
    return DEFAULT_PRIMARY


def median_seed(records: dict[int, RunRecord], metric: str) -> tuple[int, float, float]:
    """(seed, its score, the median): the run whose `metric` is closest to the median over runs (ties: the
    lower seed). The median run stands for the method better than the best one, which is the luckiest draw."""
    values = {}
    for seed, record in records.items():
        key = recorded_key(record.test, metric)
        if key is None:
            raise UserError(f"runs of {record.method} do not record {metric!r}; cannot pick the median run")
        values[seed] = key.value(record.test)
    ordered = sorted(values.values())
    median = float((ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2)
    seed = min(values, key=lambda s: (abs(values[s] - median), s))
    return seed, values[seed], median


def method_runs(root: Path, method: str) -> dict[int, RunRecord]:
    """The finished runs of `method` in a comparison folder, by seed."""
    layout = Layout(root)
    methods = sorted(p.name for p in layout.runs.iterdir() if p.is_dir()) if layout.runs.is_dir() else []
    folders = [d for d in layout.seed_dirs(method) if (d / METRICS).is_file()]
    if not folders:
        known = [m for m in methods if m != "base" and any((d / METRICS).is_file() for d in layout.seed_dirs(m))]
        raise UserError(f"--method {method}: no finished run of it in '{root}' (finished: "
                        f"{', '.join(known) or 'none'})")
    return {seed_of(d): read_record(d / METRICS) for d in folders}


def choose_run(path: str | Path, method: str | None = None, seed: int | None = None, metric: str | None = None
               ) -> ChosenRun:
    """The run `path` names; in a comparison folder, `method`'s run of `seed`, or the one nearest the median of
    `metric` (default: the comparison's primary metric)."""
    path = Path(path)
    if (path / METRICS).is_file():  # a run folder
        if method or seed is not None:
            raise UserError(f"'{path}' is a run folder: --method and --seed choose a run in a comparison folder")
        root = path.resolve().parents[2] if len(path.resolve().parents) > 2 else None
        in_comparison = (root is not None and path.resolve().parents[1].name == "runs"
                         and Layout(root).comparison.is_file())
        return ChosenRun(path, read_record(path / METRICS), root if in_comparison else None, "as given")
    if path.parent.name == "runs" or not Layout(path).runs.is_dir():
        raise UserError(f"--run '{path}' is neither a finished run folder (with {METRICS}) nor a comparison folder "
                        "(with runs/)")
    if not method:
        raise UserError(f"--run '{path}' is a comparison folder: add --method (and --seed, or the run nearest the "
                        "method's median score is taken)")
    runs = method_runs(path, method)
    if seed is not None:
        if seed not in runs:
            raise UserError(f"--seed {seed}: {method} has no finished run with that seed in '{path}' (seeds: "
                            f"{', '.join(map(str, sorted(runs)))})")
        return ChosenRun(Layout(path).run_dir(method, seed), runs[seed], path, f"seed {seed}, as given")
    metric = metric or comparison_primary(path)
    chosen, value, median = median_seed(runs, metric)
    why = (f"seed {chosen}: its {metric} {value:.4f} is the nearest to {method}'s median {median:.4f} over "
           f"{len(runs)} run(s)")
    return ChosenRun(Layout(path).run_dir(method, chosen), runs[chosen], path, why)
