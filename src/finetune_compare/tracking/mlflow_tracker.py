"""MLflow: a parent run per comparison or study, a nested run per method x seed (or trial).

Uses `MlflowClient` (explicit run ids, no global active-run state). The default store is
SQLite inside the output folder with artifacts in their own folder beside it (MLflow's
defaults `./mlflow.db` and `./mlruns` in the working directory collide); a tracking URI
in the config or `MLFLOW_TRACKING_URI` points it at a server instead. Metrics go in
batches (`log_batch`): one call per Trainer log event instead of one per metric.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ..config import Config, TrackingConfig
from ..layout import Layout
from ..utils.processes import is_dead_local_worker, worker_id
from .base import Tracker, config_params, git_commit, numeric_metrics

log = logging.getLogger(__name__)

# Fail fast when a server is down: MLflow's default is 7 retries with exponential backoff (minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network lookup at import

MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limit
MAX_METRICS_PER_BATCH = 1000


def default_tracking_uri(config: TrackingConfig, output_dir: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None for the server's)."""
    uri = config.tracking_mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    root = Layout(Path(output_dir).resolve()).mlflow
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


class MlflowTracker(Tracker):
    name = "MLflow"

    def __init__(self, config: TrackingConfig, output_dir):
        from mlflow.tracking import MlflowClient

        self.uri, artifact_location = default_tracking_uri(config, Path(output_dir))
        self.client = MlflowClient(tracking_uri=self.uri)
        exp = self.client.get_experiment_by_name(config.tracking_mlflow_experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
            config.tracking_mlflow_experiment, artifact_location=artifact_location)
        self.parent_id: str | None = None
        self.run_id: str | None = None
        self.run_ids: dict[str, str] = {}  # run name -> id, to register the best run's model
        self.commit = git_commit()
        self.register_name = f"{config.tracking_mlflow_experiment}-model"
        self.output_key = str(Path(output_dir).resolve())

    def _tags(self, config: Config, tags: dict) -> dict[str, str]:
        out = {"model": config.model_name, "output_dir": self.output_key, "worker": worker_id(),
               **{k: str(v) for k, v in tags.items()}}
        if self.commit:
            out["git_commit"] = self.commit
        return out

    def _create(self, name: str, config: Config, tags: dict, parent: str | None) -> str:
        from mlflow.entities import Param

        all_tags = self._tags(config, tags)
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        params = [Param(k, v[:6000]) for k, v in config_params(config).items()]
        for i in range(0, len(params), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run.info.run_id, params=params[i:i + MAX_PARAMS_PER_BATCH])
        return run.info.run_id

    def _log(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k.replace("@", "_"), v, ts, step) for k, v in metrics.items()]
        for i in range(0, len(items), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=items[i:i + MAX_METRICS_PER_BATCH])

    def _artifacts(self, run_id: str, artifacts: list) -> None:
        for path in artifacts:
            path = Path(path)
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(run_id, str(path))

    def _runs_of_this_folder(self, status: str | None = None) -> list:
        where = "tags.role = 'parent'" if status is None else f"attributes.status = '{status}'"
        runs = self.client.search_runs([self.experiment_id], filter_string=where, max_results=5000)
        return [r for r in runs if r.data.tags.get("output_dir") == self.output_key]

    def mark_orphans_killed(self) -> int:
        """Runs of this folder left RUNNING by a process of this host that no longer exists (kill -9) -> KILLED."""
        killed = 0
        for run in self._runs_of_this_folder("RUNNING"):
            if is_dead_local_worker(run.data.tags.get("worker", "")):
                self.client.set_terminated(run.info.run_id, status="KILLED")
                killed += 1
        if killed:
            log.warning("MLflow: %d run(s) left running by a process that died marked KILLED", killed)
        return killed

    def start_parent(self, name, config, tags):
        """Reuse this folder's parent run of the same name (a resumed comparison is one MLflow run)."""
        self.mark_orphans_killed()
        previous = [r for r in self._runs_of_this_folder() if r.info.run_name == name]
        if previous:
            self.parent_id = previous[0].info.run_id
            self.client.update_run(self.parent_id, status="RUNNING")
            self.client.set_tag(self.parent_id, "worker", worker_id())
            return
        self.parent_id = self._create(name, config, {**tags, "role": "parent"}, None)

    def _finish(self, run_id: str, status: str, metrics: dict, artifacts: list) -> None:
        self._log(run_id, numeric_metrics(metrics), 0)
        self._artifacts(run_id, artifacts)
        self.client.set_terminated(run_id, status=status)

    def end_parent(self, status, metrics, artifacts):
        if self.parent_id:
            self._finish(self.parent_id, status, metrics, artifacts)
            self.parent_id = None

    def start_run(self, name, config, tags):
        self.run_id = self.run_ids[name] = self._create(name, config, tags, self.parent_id)

    def log_metrics(self, metrics, step):
        if self.run_id:
            self._log(self.run_id, metrics, step)

    def end_run(self, status, metrics, artifacts):
        if self.run_id:
            self._finish(self.run_id, status, metrics, artifacts)
            self.run_id = None

    def log_verdict(self, verdicts):
        if not self.parent_id:
            return
        for key, v in verdicts.items():
            self._log(self.parent_id, {f"verdict.{key}.{k}": float(v[k]) for k in ("diff_mean", "ci_low", "ci_high",
                                                                                    "n_pairs") if v.get(k) is not None}, 0)
            self.client.set_tag(self.parent_id, f"verdict.{key}", v["kind"])
            self.client.set_tag(self.parent_id, f"verdict.{key}.text", v["text"][:4900])  # MLflow's tag limit: 5000

    def register_model(self, path, run_name):
        """Log a saved model folder to run `run_name` and register it as a new model version."""
        run_id = self.run_ids.get(run_name)
        if run_id is None:
            log.warning("MLflow: no run named %s in this process; model not registered", run_name)
            return
        name = self.register_name
        self.client.log_artifacts(run_id, str(path), artifact_path="model")
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        try:
            self.client.create_registered_model(name)
        except Exception:  # already registered: add a version
            pass
        version = self.client.create_model_version(name, source, run_id=run_id)
        log.info("registered %s version %s from %s", name, version.version, source)
