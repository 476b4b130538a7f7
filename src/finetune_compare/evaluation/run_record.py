"""What a run writes: one record type for metrics.json, and the one function that writes a run's files.

metrics.json is written last, so its presence marks a run complete (a resumed command skips it). A trained run
records validation, training, data and health; the base-model row (the untrained checkpoint, `seed` None) has no
such sections, and they are left out of its file rather than written as nulls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..labels import CLASS_NAMES
from ..layout import HISTORY, METRICS, PREDICTIONS, RUN_CONFIG
from ..utils.io import atomic_write_text, write_json, write_jsonl

# sections a record may not have (the base-model row, a simulated run): omitted from metrics.json when None
OPTIONAL_SECTIONS = ("validation", "training", "data", "environment", "health", "saved_model", "drift")


@dataclass
class RunRecord:
    method: str
    seed: int | None
    model_name: str
    head: str | None  # what the provider says of the head (kept, new, ...); written even when unknown
    labels: list[str]  # class names in id order: per-class metrics, confusion matrix, predictions
    test: dict[str, Any]  # every test metric (evaluation.metrics.split_metrics)
    params: dict[str, Any]  # parameter accounting (models.accounting.count_parameters)
    timing: dict[str, Any]
    memory: dict[str, Any]
    validation: dict[str, Any] | None = None  # best validation score and step (checkpoint selection)
    training: dict[str, Any] | None = None  # epochs, steps, early stopping, learning rates, budget
    data: dict[str, Any] | None = None  # split sizes, max_length, the data draw's fingerprint
    environment: dict[str, Any] | None = None
    health: dict[str, Any] | None = None  # collapsed / diverged, and the problems found (experiments.execution.run_files)
    saved_model: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None  # CKA and intruder dimensions against the base model (evaluation.drift)

    # the order metrics.json has always had: identity, scores, accounting, training, cost, data, environment, health
    ORDER = ("method", "seed", "model_name", "head", "labels", "test", "validation", "params", "training", "timing",
             "memory", "drift", "data", "environment", "health", "saved_model")

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: values[k] for k in self.ORDER if not (k in OPTIONAL_SECTIONS and values[k] is None)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        """A record read back from metrics.json (checked first: analysis.run_files.read_metrics). Files written
        before a field existed get what those versions meant: no head note, the sentiment preset's classes."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        known.setdefault("head", None)
        known["labels"] = list(known.get("labels") or CLASS_NAMES)
        return cls(**known)


def write_run_files(run_dir: Path, config_yaml: str, record: RunRecord, history: dict, rows: list[dict]) -> None:
    """A run's folder: config.yaml, history.json, predictions.jsonl, then metrics.json (last: marks it complete)."""
    atomic_write_text(run_dir / RUN_CONFIG, config_yaml)
    write_json(run_dir / HISTORY, history)
    write_jsonl(run_dir / PREDICTIONS, rows)
    write_json(run_dir / METRICS, record.to_json())
