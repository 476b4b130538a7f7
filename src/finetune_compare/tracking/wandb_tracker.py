"""Weights & Biases: one run per method x seed (grouped per comparison, job_type = method),
one run per trial in studies.

Offline by default: files under OUTPUT_DIR/wandb (`WANDB_DIR`), to upload later with
`wandb sync OUTPUT_DIR/wandb/offline-run-*`. Online when `tracking_wandb_mode: online`, or
with `auto` when `WANDB_API_KEY` is set. Console capture, code/git capture and the
metadata file (which records the command line) are off, so nothing typed on the
command line or printed to the terminal ends up in W&B files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..config import TrackingConfig
from ..layout import Layout
from ..utils.network import tcp_reachable
from .base import Tracker, config_params, numeric_metrics

log = logging.getLogger(__name__)


def wandb_mode(config: TrackingConfig) -> str:
    if config.tracking_wandb_mode != "auto":
        return config.tracking_wandb_mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class WandbTracker(Tracker):
    name = "W&B"

    def __init__(self, config: TrackingConfig, output_dir):
        import wandb  # noqa: F401  (fail here, at set-up, if it is not installed)

        self.dir = Path(output_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.environ["WANDB_DIR"] = str(self.dir)  # never ./wandb in the working directory
        os.environ.setdefault("WANDB_SILENT", "true")
        self.mode = wandb_mode(config)
        base_url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
        if self.mode == "online" and not tcp_reachable(base_url):
            # wandb.init would retry for ~90 s per run; offline files can be uploaded later with `wandb sync`
            log.warning("W&B: %s is unreachable; logging offline under %s (upload later with `wandb sync`)",
                        base_url, Layout(self.dir).wandb)
            self.mode = "offline"
        self.project = config.tracking_wandb_project
        self.entity = config.tracking_wandb_entity
        self.group: str | None = None
        self.run = None

    def start_parent(self, name, config, tags):
        self.group = name  # W&B has no nesting: runs of one comparison share a group

    def end_parent(self, status, metrics, artifacts):
        self.group = None

    def log_verdict(self, verdicts):
        """W&B has no parent run: the comparison's group gets one more run, job type 'verdict', holding it."""
        import wandb

        run = wandb.init(project=self.project, entity=self.entity, dir=str(self.dir), mode=self.mode,
                         name=f"{self.group or 'comparison'}-verdict", group=self.group, job_type="verdict",
                         settings=self._settings(), reinit="finish_previous")
        run.summary.update({f"verdict.{key}.{k}": v[k] for key, v in verdicts.items()
                            for k in ("kind", "diff_mean", "ci_low", "ci_high", "n_pairs", "text") if v.get(k) is not None})
        run.finish()

    def _settings(self):
        import wandb

        return wandb.Settings(console="off", disable_code=True, disable_git=True, save_code=False, x_disable_meta=True,
                              silent=True)

    def start_run(self, name, config, tags):
        import wandb

        settings = self._settings()
        self.run = wandb.init(
            project=self.project, entity=self.entity, dir=str(self.dir), mode=self.mode, name=name,
            group=self.group, job_type=str(tags.get("method", "run")), config=config_params(config),
            tags=[f"{k}={v}" for k, v in tags.items()], settings=settings, reinit="finish_previous",
        )

    def log_metrics(self, metrics, step):
        if self.run is not None:
            self.run.log(metrics, step=step)

    def end_run(self, status, metrics, artifacts):
        if self.run is None:
            return
        self.run.summary.update(numeric_metrics(metrics))
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)
        self.run = None
