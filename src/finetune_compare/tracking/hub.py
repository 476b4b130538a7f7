"""One place that decides what every tracker receives, and isolates their failures.

Each tracker implements the same small set of events. The hub forwards every event to
every enabled tracker; the first exception from a tracker (server down, bad URI, disk
full) gives one warning and switches that tracker off, so the run goes on and the
results on disk are complete either way.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback

from ..config import Config
from ..redaction import redact, redact_text

log = logging.getLogger(__name__)


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


class TrackerHub:
    def __init__(self, trackers: list[Tracker]):
        self.trackers = list(trackers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.trackers]

    def _call(self, event: str, *args, **kwargs) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, event)(*args, **kwargs)
            except Exception as exc:  # a tracker must never stop a run
                log.warning("%s tracking disabled for the rest of this process: %s failed: %s: %s",
                            tracker.name, event, type(exc).__name__,
                            redact_text(str(exc).splitlines()[0][:200]) if str(exc) else "")
                self.trackers.remove(tracker)

    def start_parent(self, name, config, tags=None):
        self._call("start_parent", name, config, tags or {})

    def end_parent(self, status="FINISHED", metrics=None, artifacts=None):
        self._call("end_parent", status, metrics or {}, artifacts or [])

    def start_run(self, name, config, tags=None):
        self._call("start_run", name, config, tags or {})

    def log_metrics(self, metrics, step):
        if metrics:
            self._call("log_metrics", metrics, step)

    def end_run(self, status="FINISHED", metrics=None, artifacts=None):
        self._call("end_run", status, metrics or {}, artifacts or [])

    def register_model(self, path, run_name):
        self._call("register_model", path, run_name)

    def callback(self) -> "TrackingCallback":
        return TrackingCallback(self)


class TrackingCallback(TrainerCallback):
    """Forwards the Trainer's logs (train loss, lr, validation metrics) with their step.

    The Trainer's own `report_to` is off: this is the only path from training to trackers.
    """

    def __init__(self, hub: TrackerHub):
        self.hub = hub

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = {k: float(v) for k, v in (logs or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}
        self.hub.log_metrics(metrics, state.global_step)  # validation metrics arrive here too (eval_*)


def git_commit() -> str | None:
    import subprocess
    from pathlib import Path

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def build_tracker_hub(config: Config, output_dir) -> TrackerHub:
    trackers: list[Tracker] = []
    if config.tracking_mlflow:
        try:
            from .mlflow_tracker import MlflowTracker

            trackers.append(MlflowTracker(config, output_dir))
        except ImportError:
            log.warning("MLflow tracking is on but mlflow is not installed: pip install mlflow, "
                        "or set tracking_mlflow: false; continuing without it")
        except Exception as exc:
            log.warning("MLflow tracking disabled: %s: %s", type(exc).__name__, redact_text(str(exc)))
    if config.tracking_wandb:
        try:
            from .wandb_tracker import WandbTracker

            trackers.append(WandbTracker(config, output_dir))
        except ImportError:
            log.warning("W&B tracking is on but wandb is not installed: pip install wandb, "
                        "or set tracking_wandb: false; continuing without it")
        except Exception as exc:
            log.warning("W&B tracking disabled: %s: %s", type(exc).__name__, redact_text(str(exc)))
    return TrackerHub(trackers)
