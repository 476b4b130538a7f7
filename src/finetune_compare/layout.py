"""Every path under an output folder, in one place: writers and readers all go through `Layout`.

    OUTPUT/
      experiment.yaml            ownership marker: the result-affecting config (experiments/study/ownership.py)
      config.yaml                the whole resolved config of the latest command (secrets masked)
      .finetune-compare.lock     held while a command writes here
      data_summary.json          counts, lengths, drops, confounds
      comparison.json            statistics and verdict (compare, report)
      preregistration.json       what the study declared before it ran, and its plan from a pilot (compare)
      report.html, report.md     the report; plots/*.png its figures
      comparison.csv, .tex       one row per method and paired seed; the results table in LaTeX
      serving.json               serving: true: each method's median run exported and timed (latency, size)
      runs/<method>/seed-<n>/    one run: config.yaml, metrics.json (written last: marks it complete),
                                 history.json, predictions.jsonl, model/ (save_model), checkpoints/ (while training),
                                 trained/ (trained, not yet tested: the rerun tests it without retraining)
      runs/base/                 the untrained checkpoint, evaluated as-is
      cache/tokenized-<key>/     tokenised splits, reused on resume
      optimize/                  optuna.db, tuned.yaml, expected_validation.png, <method>/summary.json,
                                 <method>/trials/trial-<n>/, <method>/extended/ (tune_extend's widened search)
      mlflow/, wandb/            the trackers' local stores
      points/<key>=<value>/      a sweep's points: each a comparison folder as above
      sweep.json, sweep_report.html, sweep_report.md   the sweep's summary and report (plots/sweep_*.png)

A leaf module (pathlib only), so every stage can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# file names inside a run folder
RUN_CONFIG = "config.yaml"
METRICS = "metrics.json"
HISTORY = "history.json"
PREDICTIONS = "predictions.jsonl"
MODEL = "model"
CHECKPOINTS = "checkpoints"
TRAINED = "trained"  # a run's best weights and training record, written before its test pass, gone once complete
ATTEMPT = "attempt.json"  # Ray executor: the attempt now running (its number, where, since when)
FAILURE = "failure.json"  # Ray executor: a run that failed on every attempt, with its error
RUN_FILES = (RUN_CONFIG, METRICS, HISTORY, PREDICTIONS)

BASE_METHOD = "base"  # the untrained checkpoint's run folder under runs/
MARKER = "experiment.yaml"


SEED_DIR = re.compile(r"seed-(0|[1-9][0-9]*)")  # exactly what seed_dir_name writes


def seed_dir_name(seed: int) -> str:
    return f"seed-{seed}"


def seed_of(folder: Path) -> int | None:
    """The seed of a run folder we wrote ('seed-42'), or None for any other name (a user's 'seed-42-old')."""
    match = SEED_DIR.fullmatch(folder.name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Layout:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    # ownership and configuration
    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def lock(self) -> Path:
        return self.root / ".finetune-compare.lock"

    # a comparison
    @property
    def data_summary(self) -> Path:
        return self.root / "data_summary.json"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.json"

    @property
    def preregistration(self) -> Path:
        return self.root / "preregistration.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def method_dir(self, method: str) -> Path:
        return self.runs / method

    def run_dir(self, method: str, seed: int) -> Path:
        return self.method_dir(method) / seed_dir_name(seed)

    @property
    def base_run(self) -> Path:
        return self.method_dir(BASE_METHOD)

    def seed_dirs(self, method: str) -> list[Path]:
        """The run folders of `method` that we wrote (seed-<n>), in seed order; other names are not ours."""
        ours = [d for d in self.method_dir(method).glob("seed-*") if d.is_dir() and seed_of(d) is not None]
        return sorted(ours, key=seed_of)

    def failed_runs(self) -> list[Path]:
        """failure.json of every run that failed on every attempt and has not completed since."""
        return sorted(p for p in self.runs.glob(f"*/seed-*/{FAILURE}")
                      if seed_of(p.parent) is not None and not (p.parent / METRICS).is_file())

    def finished_runs(self) -> list[Path]:
        """metrics.json of every finished seeded run (base excluded), in our folders only."""
        return sorted(p for p in self.runs.glob(f"*/seed-*/{METRICS}")
                      if p.parent.parent.name != BASE_METHOD and seed_of(p.parent) is not None)

    def stray_run_folders(self) -> list[Path]:
        """Entries under runs/<method>/ that we did not write (a backup copy 'seed-42-old', a note): ignored."""
        if not self.runs.is_dir():
            return []
        return sorted(p for m in self.runs.iterdir() if m.is_dir() and m.name != BASE_METHOD
                      for p in m.iterdir() if seed_of(p) is None or not p.is_dir())

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    # a search
    @property
    def optimize(self) -> Path:
        return self.root / "optimize"

    @property
    def optuna_db(self) -> Path:
        return self.optimize / "optuna.db"

    @property
    def tuned(self) -> Path:
        return self.optimize / "tuned.yaml"

    @property
    def expected_validation_plot(self) -> Path:
        return self.optimize / "expected_validation.png"

    def study_dir(self, method: str, search: str | None = None) -> Path:
        """A method's study; `search` names a later search of it (`extended`: its space widened at an edge)."""
        return self.optimize / method / search if search else self.optimize / method

    def trial_dir(self, method: str, number: int, search: str | None = None) -> Path:
        return self.study_dir(method, search) / "trials" / f"trial-{number}"

    def study_summary(self, method: str, search: str | None = None) -> Path:
        return self.study_dir(method, search) / "summary.json"

    def study_trials_table(self, method: str, search: str | None = None) -> Path:
        return self.study_dir(method, search) / "trials.csv"

    def study_best_params(self, method: str, search: str | None = None) -> Path:
        return self.study_dir(method, search) / "best_params.yaml"

    def study_plot(self, method: str, name: str, search: str | None = None) -> Path:
        return self.study_dir(method, search) / f"{name}.png"

    def study_summaries(self) -> list[Path]:
        return sorted(self.optimize.glob("*/summary.json"))

    def plot(self, name: str) -> Path:
        """A figure of the report (plots/<name>.png)."""
        return self.plots / f"{name}.png"

    @property
    def serving(self) -> Path:
        return self.root / "serving.json"

    @property
    def comparison_csv(self) -> Path:
        return self.root / "comparison.csv"

    @property
    def comparison_tex(self) -> Path:
        return self.root / "comparison.tex"

    # trackers
    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def wandb(self) -> Path:
        return self.root / "wandb"

    # a sweep
    @property
    def points(self) -> Path:
        return self.root / "points"

    def point_dir(self, name: str) -> Path:
        return self.points / name

    @property
    def sweep_summary(self) -> Path:
        return self.root / "sweep.json"

    @property
    def sweep_report_html(self) -> Path:
        return self.root / "sweep_report.html"

    @property
    def sweep_report_md(self) -> Path:
        return self.root / "sweep_report.md"


# What `--overwrite` may delete, and only inside a folder that holds our marker (names relative to the root).
RESULT_ENTRIES = ("runs", "plots", "optimize", "cache", "points", "report.html", "report.md", "comparison.json",
                  "preregistration.json",
                  "comparison.csv", "comparison.tex", "serving.json",
                  "data_summary.json", "sweep.json", "sweep_report.html", "sweep_report.md", "config.yaml", MARKER)
