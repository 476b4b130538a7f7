"""What the frozen base of a parameter-efficient method is stored in (bf16 under bf16 compute saves memory)."""

from __future__ import annotations

import torch

from ..errors import ModelError
from ..methods import get_method


def frozen_weights_dtype(setting: str, method: str, precision: str) -> str:
    """'bf16' or 'fp32': what the frozen base of `method` is stored in, given the compute precision."""
    if get_method(method).trains_base:
        return "fp32"  # every weight trains: fp32 master weights, bf16 only inside autocast
    if setting == "auto":
        return "bf16" if precision == "bf16" else "fp32"
    if setting == "bf16" and precision != "bf16":
        compute = {"no": "fp32"}.get(precision, precision)
        raise ModelError(f"base_weights_dtype bf16 needs bf16 compute, but training runs in {compute}: set "
                         "mixed_precision: bf16 (or auto with prefer_memory_over_speed: true on a CPU with bf16, or a "
                         "GPU with bf16), or base_weights_dtype: fp32")
    return setting


def store_frozen_weights(model: torch.nn.Module, dtype: str) -> int:
    """Cast every frozen floating-point parameter to `dtype`; returns the bytes this saves.

    Frozen weights get no gradient and no optimizer state, so under bf16 autocast an fp32 copy only costs
    memory and a cast at every step. Trainable ones (adapters, head) stay fp32 for the optimizer.
    """
    if dtype != "bf16":
        return 0
    saved = 0
    with torch.no_grad():
        for p in model.parameters():
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)
                saved += p.numel() * 2
    return saved
