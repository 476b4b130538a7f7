"""Device and mixed-precision choice."""

from __future__ import annotations

import logging
import os

import torch

from ..errors import ConfigError
from ..utils.distributed import world_size
from .precision_probe import PrecisionChoice, cpu_bf16_path, probe_cpu_precision

log = logging.getLogger(__name__)


def select_gpu(index: int) -> None:
    """Make GPU `index` (of those this process may see) the only visible one, through CUDA_VISIBLE_DEVICES: the
    Trainer always trains on cuda:0 of what is visible. Only possible before CUDA starts in this process."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    choices = [v.strip() for v in visible.split(",")] if visible else None
    if choices is not None and index >= len(choices):
        raise ConfigError(f"config key 'device': cuda:{index} requested but CUDA_VISIBLE_DEVICES={visible} makes only "
                          f"{len(choices)} GPU(s) visible (cuda:0..cuda:{len(choices) - 1})")
    if torch.cuda.is_initialized():
        raise ConfigError(f"config key 'device': cuda:{index} must be chosen before this process starts CUDA; set "
                          f"CUDA_VISIBLE_DEVICES={index} before starting it and use device: cuda")
    os.environ["CUDA_VISIBLE_DEVICES"] = choices[index] if choices is not None else str(index)


def resolve_device(requested: str) -> str:
    """'cpu' or 'cuda' ('cuda:N' selects GPU N first, then trains on it as 'cuda')."""
    if requested.startswith("cuda:"):
        if world_size() > 1:  # torchrun: each rank already takes its own GPU (LOCAL_RANK)
            log.warning("device %s: ignored under torchrun, where each rank uses the GPU of its local rank", requested)
        else:
            index = int(requested.split(":", 1)[1])
            count = _physical_gpu_count()
            if count is not None and index >= count and not os.environ.get("CUDA_VISIBLE_DEVICES"):
                raise ConfigError(f"config key 'device': cuda:{index} requested but this machine has {count} GPU(s) "
                                  f"(cuda:0..cuda:{count - 1})" if count else
                                  f"config key 'device': cuda:{index} requested but no CUDA device is available; use "
                                  "auto or cpu")
            select_gpu(index)
        requested = "cuda"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': 'cuda' requested but no CUDA device is available; use auto or cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _physical_gpu_count() -> int | None:
    """GPUs on the machine from NVML, without starting CUDA (which would fix the visible set); None if unknown."""
    try:
        import pynvml  # noqa: PLC0415  (shipped with CUDA builds of torch as nvidia-ml-py)

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML (a CPU build, no driver): CUDA's own check below answers
        return None if torch.version.cuda else 0


def cpu_supports_bf16() -> bool:
    """True on CPUs with bf16 instructions (AVX512-BF16 or AMX); whether bf16 is also *faster* there is measured
    (precision_probe.py)."""
    return cpu_bf16_path() != "none"


def choose_precision(requested: str, device: str, shapes: tuple[int, int, int] | None = None,
                     prefer_memory: bool = False) -> PrecisionChoice:
    """The precision a command trains in, and why. `shapes` (hidden size, MLP size, rows of a batch) are what the
    CPU probe times; without them it times a MiniLM-sized layer at 2,048 rows."""
    if device == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return PrecisionChoice("bf16" if bf16_ok else "fp16", "auto: bf16 on a GPU that has it (tensor cores), no "
                                   "probe" if bf16_ok else "auto: fp16 on a GPU without bf16, no probe")
        if requested == "bf16" and not bf16_ok:
            raise ConfigError("config key 'mixed_precision': this GPU has no bf16; use fp16, auto or no")
        return PrecisionChoice(requested, "set by mixed_precision")
    if requested == "fp16":
        raise ConfigError("config key 'mixed_precision': fp16 needs a CUDA GPU; on CPU use bf16, auto or no")
    if requested != "auto":
        return PrecisionChoice(requested, "set by mixed_precision")
    path = cpu_bf16_path()
    if path == "none":
        return PrecisionChoice("no", "auto: this CPU has no bf16 instructions (emulated bf16 is slower), so fp32")
    if prefer_memory:
        return PrecisionChoice("bf16", "auto with prefer_memory_over_speed: bf16 (frozen base stored in bf16), not "
                               "probed for speed")
    hidden, intermediate, rows = shapes or (384, 1536, 2048)
    return probe_cpu_precision(hidden, intermediate, rows)


def resolve_precision(requested: str, device: str, shapes: tuple[int, int, int] | None = None,
                      prefer_memory: bool = False) -> str:
    """Return 'bf16', 'fp16' or 'no' for this device (choose_precision says why)."""
    return choose_precision(requested, device, shapes, prefer_memory).precision
