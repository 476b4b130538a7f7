"""What every tracker shares: the event interface and the flattening of configs and metrics.

The trackers (mlflow_tracker, wandb_tracker) and the hub that drives them all import this
module; none of them imports another.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from ..config import Config
from ..redaction import redact


def flatten(d: dict, prefix: str = "", sep: str = ".") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def numeric_metrics(d: dict, prefix: str = "") -> dict[str, float]:
    """Flattened numeric leaves (lists and strings dropped): what trackers can plot."""
    return {k: float(v) for k, v in flatten(d, prefix).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def config_params(config: Config) -> dict[str, Any]:
    """The resolved config, secrets removed, flattened to strings."""
    return {k: (",".join(map(str, v)) if isinstance(v, list) else str(v))
            for k, v in flatten(redact(config.to_dict())).items()}


class Tracker:
    """Base for trackers: every event is optional."""

    name = "tracker"

    def start_parent(self, name: str, config: Config, tags: dict) -> None: ...
    def end_parent(self, status: str, metrics: dict, artifacts: list) -> None: ...
    def start_run(self, name: str, config: Config, tags: dict) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def end_run(self, status: str, metrics: dict, artifacts: list) -> None: ...
    def register_model(self, path, run_name: str) -> None: ...
    def log_verdict(self, verdicts: dict[str, dict]) -> None: ...  # {comparison: {kind, diff_mean, ci_low, ...}}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
