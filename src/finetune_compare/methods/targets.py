"""Which layers a method adapts, checked against the model before any folder is claimed or any run trains."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ModelError
from .registry import get_method

log = logging.getLogger(__name__)


def in_head(name: str, head: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def resolve_target_modules(model: Any, targets: list[str], head: list[str],
                           key: str = "lora_target_modules") -> list[str]:
    """Full names of the encoder layers that `targets` (name suffixes) select.

    peft matches target names as suffixes, so `dense` would also wrap `classifier.dense`
    in RoBERTa and leave the head half-frozen. Resolving to explicit names outside the
    head avoids that; the head is trained in full by every method instead.
    """
    import torch

    adaptable = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)  # layers peft can wrap
    candidates = [(n, m) for n, m in model.named_modules() if n and isinstance(m, adaptable)]
    selected: list[str] = []
    for target in targets:
        hits = [n for n, _ in candidates if n == target or n.endswith("." + target)]
        body = [n for n in hits if not in_head(n, head)]
        if not body:
            available = sorted({n.rsplit(".", 1)[-1] for n, _ in candidates if not in_head(n, head)})
            only_head = f" (it matches only the classification head: {hits})" if hits else ""
            raise ModelError(
                f"{key} entry '{target}' matches no layer of the encoder{only_head}; "
                f"layer names available: {', '.join(available)}"
            )
        if len(body) < len(hits):
            log.info("target '%s': leaving head layers %s out of the adapters (the head is trained fully)",
                     target, [n for n in hits if in_head(n, head)])
        selected.extend(n for n in body if n not in selected)
    return selected


def targets_of(model: Any, settings: Any, field: str, head: list[str]) -> list[str]:
    """The resolved layers of one settings field, named in messages by its config key."""
    return resolve_target_modules(model, getattr(settings, field), head, settings.key_name(field))


def check_method(model: Any, method_config: Any, head: list[str], name: str) -> None:
    """What `apply` would reject (targets that match nothing, a rank above a layer's width), found early."""
    method = get_method(name)
    if not method.adapts_layers:
        return
    settings = method_config.settings_of(name)
    if method.targets_field is None:  # a check of its own (a peft type by name): it applies the method to a copy
        method.check(model, settings, head)
        return
    targets = targets_of(model, settings, method.targets_field, head)
    if method.check is not None:
        method.check(model, settings, targets)
    if method.rank_field is None:
        return
    rank, key = getattr(settings, method.rank_field), method.rank_key
    modules = dict(model.named_modules())
    for layer_name in targets:
        layer = modules[layer_name]
        width = min(getattr(layer, "in_features", 0) or getattr(layer, "num_embeddings", 0),
                    getattr(layer, "out_features", 0) or getattr(layer, "embedding_dim", 0))
        if width and rank > width:
            raise ModelError(f"{key} {rank} is larger than layer '{layer_name}' ({width} wide): a low-rank "
                             f"update cannot have a higher rank than the layer; use {key} <= {width}")
