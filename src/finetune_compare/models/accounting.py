"""Parameter accounting: total, trainable, adapter and head, reported separately."""

from __future__ import annotations

import torch


def adapter_parameter_ids(model: torch.nn.Module) -> set[int]:
    """The parameters of peft's tuner layers, as each layer names them (`adapter_layer_names`: lora_A/lora_B and
    DoRA's magnitude, IA3's ia3_l, VeRA's lambda vectors, ...); empty for a model peft did not wrap."""
    if not hasattr(model, "peft_config"):
        return set()
    from peft.tuners.tuners_utils import BaseTunerLayer

    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            for attr in module.adapter_layer_names:
                container = getattr(module, attr, None)
                if isinstance(container, torch.nn.Module):
                    ids.update(id(p) for p in container.parameters())
    return ids


def count_parameters(model: torch.nn.Module, head: list[str]) -> dict[str, float]:
    """Counts for a plain or peft-wrapped model.

    peft keeps a frozen copy of every `modules_to_save` module (`original_module`) so that
    adapters can be switched off; it is not part of the trained model and is not counted.
    """
    adapters = adapter_parameter_ids(model)
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
        if id(p) in adapters:
            adapter += n
        elif any(h in name.split(".") for h in head):
            head_n += n
    return {
        "total": total,
        "trainable": trainable,
        "adapter": adapter,
        "head": head_n,
        "trainable_ratio": trainable / total if total else 0.0,
    }
