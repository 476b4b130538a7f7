"""What a run leaves beside its metrics: its history (train and validation logs), its health flags, and the
checkpoints an interrupted run resumes from."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from ...analysis.aggregate import is_collapsed
from ...layout import CHECKPOINTS

log = logging.getLogger(__name__)

TIMING_SUFFIXES = ("_runtime", "_per_second")  # wall-clock fields kept out of history.json


def history_of(log_history: list[dict]) -> dict:
    train, evals = [], []
    for entry in log_history:
        if "loss" in entry:
            train.append({k: entry[k] for k in ("step", "epoch", "loss", "learning_rate", "grad_norm") if k in entry})
        elif "eval_macro_f1" in entry:
            # wall-clock fields would make two identical runs' histories differ; timings are in metrics.json
            evals.append({k.removeprefix("eval_"): v for k, v in entry.items() if not k.endswith(TIMING_SUFFIXES)})
    return {"train": train, "eval": evals}


def run_health(test: dict, history: dict, steps: int | None = None, warmup_steps: int | None = None) -> dict:
    """Flags for a run that finished but did not learn: one predicted class, a loss far above its start, or training
    that ended inside the learning-rate warmup (the rate never reached its peak)."""
    collapsed = is_collapsed(test)
    losses = [e["loss"] for e in history["train"] if "loss" in e]
    diverged = len(losses) >= 3 and losses[-1] > 2 * losses[0]
    problems = []
    if collapsed:
        problems.append("predicts one class for every test example (collapsed); it is excluded from the "
                        "comparison's statistics: check the learning rate")
    if diverged:
        problems.append(f"training loss rose from {losses[0]:.3f} to {losses[-1]:.3f} (diverged): lower the "
                        "learning rate")
    in_warmup = bool(warmup_steps) and steps is not None and steps <= warmup_steps
    if in_warmup:
        problems.append(f"training ended at step {steps}, inside the learning-rate warmup ({warmup_steps} steps): the "
                        "learning rate never reached its peak: lower num_epochs (warmup is warmup_ratio of the planned "
                        "steps) or warmup_ratio")
    return {"collapsed": collapsed, "diverged": diverged, "in_warmup": in_warmup, "problems": problems}


CHECKPOINT_COMPLETE = ("trainer_state.json", "best_model_callback.pt")  # the last files a save writes


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest *complete* checkpoint: a process killed while saving leaves a partial one behind."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    steps = {p: re.fullmatch(r"checkpoint-([0-9]+)", p.name) for p in folder.glob("checkpoint-*")}
    # the Trainer's own names only: a user's 'checkpoint-8-backup' is neither used nor deleted
    candidates = sorted((p for p, m in steps.items() if m and p.is_dir()), key=lambda p: int(steps[p].group(1)),
                        reverse=True)
    for path in candidates:
        if all((path / name).is_file() for name in CHECKPOINT_COMPLETE):
            return str(path)
        log.warning("ignoring incomplete checkpoint %s (interrupted while saving)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None
