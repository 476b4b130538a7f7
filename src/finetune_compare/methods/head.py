"""Linear probing: a frozen encoder, only the classification head trains (a floor for what adapters add)."""

from __future__ import annotations

from .registry import ADAPTER_EPOCHS, Method, register_method
from .targets import in_head



def apply_head_only(model, settings, head):
    for name, p in model.named_parameters():
        p.requires_grad_(in_head(name, head))
    return model


register_method(Method(
    "head", "frozen encoder, only the head is trained", apply_head_only,
    search_space={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                  "num_epochs": ADAPTER_EPOCHS},
))
