"""Device and mixed-precision choice."""

from __future__ import annotations

import logging

import torch

from ..errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(requested: str) -> str:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': 'cuda' requested but no CUDA device is available; use auto or cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 matmuls (AVX512-BF16 or AMX), where autocast is faster.

    On other CPUs bf16 is emulated and slower than fp32, so 'auto' keeps fp32 there.
    """
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, device: str) -> str:
    """Return 'bf16', 'fp16' or 'no' for this device."""
    if device == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16_ok else "fp16"
        if requested == "bf16" and not bf16_ok:
            raise ConfigError("config key 'mixed_precision': this GPU has no bf16; use fp16, auto or no")
        return requested
    if requested == "fp16":
        raise ConfigError("config key 'mixed_precision': fp16 needs a CUDA GPU; on CPU use bf16, auto or no")
    if requested == "auto":
        return "bf16" if cpu_supports_bf16() else "no"
    return requested
