"""Parameter accounting: total, trainable, adapter and head, reported separately."""

from __future__ import annotations

import torch

ADAPTER_MARKERS = ("lora_", "ia3_", "hada_", "lokr_", "oft_")


def count_parameters(model: torch.nn.Module, head: list[str]) -> dict[str, float]:
    """Counts for a plain or peft-wrapped model.

    peft keeps a frozen copy of every `modules_to_save` module (`original_module`) so that
    adapters can be switched off; it is not part of the trained model and is not counted.
    """
    total = trainable = adapter = head_n = 0
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if ".original_module." in name or id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
        parts = name.split(".")
        if any(marker in part for part in parts for marker in ADAPTER_MARKERS):
            adapter += n
        elif any(h in parts for h in head):
            head_n += n
    return {
        "total": total,
        "trainable": trainable,
        "adapter": adapter,
        "head": head_n,
        "trainable_ratio": trainable / total if total else 0.0,
    }
