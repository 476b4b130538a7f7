"""Full fine-tuning: every weight trains (the reference the others are compared against)."""

from __future__ import annotations

from .registry import Method, register_method


def apply_full(model, settings, head):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


register_method(Method(
    "full", "full fine-tuning: every weight is trained", apply_full,
    search_space={"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
                  "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
                  "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
                  "num_epochs": {"type": "int", "low": 1, "high": 5}},
    trains_base=True,
))
