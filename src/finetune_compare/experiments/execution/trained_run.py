"""A trained run that is not yet tested survives an interrupt.

Training is the expensive part of a run; the test pass is minutes at most. So the moment training ends (best
weights restored), the run's trainable weights and everything its record needs from training are written to
`runs/<method>/seed-<n>/trained/`, before the test pass starts. A command stopped during the test pass, or while
the run's files are written, finds that folder on its rerun and tests the saved weights without retraining; the
folder goes once metrics.json is written.

Only the trainable parameters are saved: the frozen rest is rebuilt from the checkpoint with the run's seed, exactly
as training built it (a few MB for LoRA; the whole model for full fine-tuning). `state.json` is written last, so a
folder without it was cut off while saving and is ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...layout import TRAINED
from ...utils.io import atomic_write_bytes, read_json, write_json

log = logging.getLogger(__name__)

WEIGHTS = "weights.safetensors"
STATE = "state.json"  # written last: marks the folder complete
FORMAT = 1


@dataclass
class TrainedRun:
    """What training leaves for the test pass and the run's record (timings and memory of the training part)."""

    params: dict[str, Any]
    epochs_run: float
    steps: int
    warmup_steps: int
    stopped_early: bool
    final_train_loss: float
    best_value: float | None
    best_step: int | None
    eval_seconds: float
    wall_seconds: float
    shapes: dict[str, Any]
    log_history: list[dict]
    memory: dict[str, Any]  # the training part's summary (the test pass is sampled on top when it runs in-process)
    memory_series: list
    resumed: bool = False  # loaded from disk by a rerun: the test pass runs in another process than training


def trained_dir(run_dir: Path) -> Path:
    return Path(run_dir) / TRAINED


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_trained_run(run_dir: Path, model: torch.nn.Module, trained: TrainedRun) -> Path:
    """Write the trained weights, then state.json; each file atomically, so an interrupt leaves no half file."""
    from safetensors.torch import save

    folder = trained_dir(run_dir)
    # serialised in memory, then written atomically: a full disk is an OSError naming the file and leaves nothing
    atomic_write_bytes(folder / WEIGHTS, save(trainable_state(model)))
    state = {k: v for k, v in dataclasses.asdict(trained).items() if k != "resumed"}
    write_json(folder / STATE, {"format": FORMAT, **state})
    return folder


def load_trained_run(run_dir: Path) -> tuple[TrainedRun, dict[str, torch.Tensor]] | None:
    """The saved training of an interrupted run, or None (never trained, or cut off while saving: trained again)."""
    folder = trained_dir(run_dir)
    if not folder.is_dir():
        return None
    try:
        state = read_json(folder / STATE)
        if state.pop("format", None) != FORMAT:
            raise ValueError("unknown format")
        from safetensors.torch import load_file

        weights = load_file(str(folder / WEIGHTS))
        return TrainedRun(**state, resumed=True), weights
    except Exception as exc:  # noqa: BLE001 - any unreadable leftover is retrained, never trusted
        log.warning("ignoring %s (incomplete or unreadable: %s); the run is trained again", folder,
                    f"{type(exc).__name__}: {exc}"[:200])
        discard_trained(run_dir)
        return None


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Put saved trainable weights into a freshly built model of the same method; every trainable one must match."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(weights):
        missing, extra = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
        raise ValueError(f"saved weights do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor.to(params[name].device))


def discard_trained(run_dir: Path) -> None:
    shutil.rmtree(trained_dir(run_dir), ignore_errors=True)
