"""Every path under an output folder, in one place: writers and readers all go through `Layout`.

    OUTPUT/
      experiment.yaml            ownership marker: the result-affecting config (experiments/outputs.py)
      config.yaml                the whole resolved config of the latest command (secrets masked)
      .finetune-compare.lock     held while a command writes here
      data_summary.json          counts, lengths, drops, confounds
      comparison.json            statistics and verdict (compare, report)
      report.html, report.md     the report; plots/*.png its figures
      runs/<method>/seed-<n>/    one run: config.yaml, metrics.json (written last: marks it complete),
                                 history.json, predictions.jsonl, model/ (save_model), checkpoints/ (while running)
      runs/base/                 the untrained checkpoint, evaluated as-is
      cache/tokenized-<key>/     tokenised splits, reused on resume
      optimize/                  optuna.db, tuned.yaml, <method>/summary.json, <method>/trials/trial-<n>/
      mlflow/, wandb/            the trackers' local stores
      points/<key>=<value>/      a sweep's points: each a comparison folder as above
      sweep.json, sweep_report.html, sweep_report.md   the sweep's summary and report (plots/sweep_*.png)

A leaf module (pathlib only), so every stage can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# file names inside a run folder
RUN_CONFIG = "config.yaml"
METRICS = "metrics.json"
HISTORY = "history.json"
PREDICTIONS = "predictions.jsonl"
MODEL = "model"
CHECKPOINTS = "checkpoints"
RUN_FILES = (RUN_CONFIG, METRICS, HISTORY, PREDICTIONS)

BASE_METHOD = "base"  # the untrained checkpoint's run folder under runs/
MARKER = "experiment.yaml"


def seed_dir_name(seed: int) -> str:
    return f"seed-{seed}"


def seed_of(folder: Path) -> int:
    return int(folder.name.split("-", 1)[1])


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
        return sorted(self.method_dir(method).glob("seed-*"), key=seed_of)

    def finished_runs(self) -> list[Path]:
        """metrics.json of every finished seeded run (base excluded)."""
        return sorted(self.runs.glob(f"*/seed-*/{METRICS}"))

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

    def study_dir(self, method: str) -> Path:
        return self.optimize / method

    def trial_dir(self, method: str, number: int) -> Path:
        return self.study_dir(method) / "trials" / f"trial-{number}"

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
                  "data_summary.json", "sweep.json", "sweep_report.html", "sweep_report.md", "config.yaml", MARKER)
