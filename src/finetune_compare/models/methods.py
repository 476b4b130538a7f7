"""Fine-tuning methods: functions that turn a base model into one with chosen trainable parameters.

Training, evaluation and accounting never look at the method; they only see which
parameters require gradients. Adding a method is adding an entry to `METHODS`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from ..config import Config
from ..errors import ModelError

log = logging.getLogger(__name__)

ADAPTER_METHODS = ("lora", "dora")  # methods whose target layers and rank depend on the model's layers

# layer types peft can wrap with LoRA
_ADAPTABLE = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)


def _in_head(name: str, head: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def resolve_target_modules(model: torch.nn.Module, targets: list[str], head: list[str]) -> list[str]:
    """Full names of the encoder layers that `targets` (name suffixes) select.

    peft matches target names as suffixes, so `dense` would also wrap `classifier.dense`
    in RoBERTa and leave the head half-frozen. Resolving to explicit names outside the
    head avoids that; the head is trained in full by every method instead.
    """
    candidates = [(n, m) for n, m in model.named_modules() if n and isinstance(m, _ADAPTABLE)]
    selected: list[str] = []
    for target in targets:
        hits = [n for n, _ in candidates if n == target or n.endswith("." + target)]
        body = [n for n in hits if not _in_head(n, head)]
        if not body:
            available = sorted({n.rsplit(".", 1)[-1] for n, _ in candidates if not _in_head(n, head)})
            only_head = f" (it matches only the classification head: {hits})" if hits else ""
            raise ModelError(
                f"lora_target_modules entry '{target}' matches no layer of the encoder{only_head}; "
                f"layer names available: {', '.join(available)}"
            )
        if len(body) < len(hits):
            log.info("target '%s': leaving head layers %s out of LoRA (the head is trained fully)",
                     target, [n for n in hits if _in_head(n, head)])
        selected.extend(n for n in body if n not in selected)
    return selected


def apply_full(model: torch.nn.Module, config: Config, head: list[str]) -> torch.nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def apply_head_only(model: torch.nn.Module, config: Config, head: list[str]) -> torch.nn.Module:
    """Linear probing: a frozen encoder, only the classification head is trained."""
    for name, p in model.named_parameters():
        p.requires_grad_(_in_head(name, head))
    return model


def _apply_lora(model: torch.nn.Module, config: Config, head: list[str], use_dora: bool) -> torch.nn.Module:
    from peft import LoraConfig, TaskType, get_peft_model

    targets = resolve_target_modules(model, config.lora_target_modules, head)
    lora_config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias=config.lora_bias,
        # the new (or kept) head must be trained and saved with the adapter
        modules_to_save=list(head),
        use_dora=use_dora,
    )
    return get_peft_model(model, lora_config)


def apply_lora(model: torch.nn.Module, config: Config, head: list[str]) -> torch.nn.Module:
    return _apply_lora(model, config, head, use_dora=False)


def apply_dora(model: torch.nn.Module, config: Config, head: list[str]) -> torch.nn.Module:
    """DoRA: LoRA with a learned magnitude per output (peft `use_dora`)."""
    return _apply_lora(model, config, head, use_dora=True)


@dataclass(frozen=True)
class Method:
    name: str
    apply: Callable[[torch.nn.Module, Config, list[str]], torch.nn.Module]
    is_peft: bool
    description: str


METHODS: dict[str, Method] = {
    "full": Method("full", apply_full, False, "full fine-tuning: every weight is trained"),
    "lora": Method("lora", apply_lora, True, "LoRA adapters on the target layers + the full head"),
    "dora": Method("dora", apply_dora, True, "DoRA (weight-decomposed LoRA) + the full head"),
    "head": Method("head", apply_head_only, False, "frozen encoder, only the head is trained"),
}


def frozen_weights_dtype(setting: str, method: str, precision: str) -> str:
    """'bf16' or 'fp32': what the frozen base of `method` is stored in, given the compute precision."""
    if method == "full":
        return "fp32"  # every weight trains: fp32 master weights, bf16 only inside autocast
    if setting == "auto":
        return "bf16" if precision == "bf16" else "fp32"
    if setting == "bf16" and precision != "bf16":
        compute = {"no": "fp32"}.get(precision, precision)
        raise ModelError(f"base_weights_dtype bf16 needs bf16 compute, but training runs in {compute}: set "
                         "mixed_precision: bf16 (or auto on a CPU/GPU with bf16), or base_weights_dtype: fp32")
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


def check_method(model: torch.nn.Module, config: Config, head: list[str], method: str) -> None:
    """What `apply` would reject, found before any folder is claimed or any run trains."""
    get_method(method)
    if method not in ADAPTER_METHODS:
        return
    modules = dict(model.named_modules())
    for name in resolve_target_modules(model, config.lora_target_modules, head):
        layer = modules[name]
        width = min(getattr(layer, "in_features", 0) or getattr(layer, "num_embeddings", 0),
                    getattr(layer, "out_features", 0) or getattr(layer, "embedding_dim", 0))
        if width and config.lora_r > width:
            raise ModelError(f"lora_r {config.lora_r} is larger than layer '{name}' ({width} wide): a low-rank "
                             f"update cannot have a higher rank than the layer; use lora_r <= {width}")


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ModelError(f"unknown method '{name}'; allowed: {', '.join(METHODS)}") from None
