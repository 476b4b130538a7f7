"""One place that decides what every tracker receives, and isolates their failures.

Each tracker implements the same small set of events. The hub forwards every event to
every enabled tracker; the first exception from a tracker (server down, bad URI, disk
full) gives one warning and switches that tracker off, so the run goes on and the
results on disk are complete either way.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback

from ..config import TrackingConfig
from ..redaction import redact_text
from .base import Tracker

log = logging.getLogger(__name__)


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

    def log_verdict(self, verdicts):
        """The comparison's answer on its parent record: per comparison the verdict, difference and interval."""
        if verdicts:
            self._call("log_verdict", verdicts)

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


def build_tracker_hub(config: TrackingConfig, output_dir) -> TrackerHub:
    trackers: list[Tracker] = []
    # each tracker is imported only when enabled: mlflow and wandb take seconds to import and are optional
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
