"""Fine-tuning methods: functions that turn a base model into one with chosen trainable parameters.

Training, evaluation and accounting never look at the method; they only see which
parameters require gradients. Which methods exist, and what each needs (learning-rate
key, target layers, rank, search space), is the registry's (`finetune_compare.registry`);
this module holds the functions its entries name.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Callable

import torch

from ..config import MethodConfig
from ..errors import ConfigError, ModelError
from ..registry import MethodSpec, get_spec

log = logging.getLogger(__name__)

# layer types peft can wrap with LoRA
_ADAPTABLE = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)


def _in_head(name: str, head: list[str]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def resolve_target_modules(model: torch.nn.Module, targets: list[str], head: list[str],
                           key: str = "lora_target_modules") -> list[str]:
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
                f"{key} entry '{target}' matches no layer of the encoder{only_head}; "
                f"layer names available: {', '.join(available)}"
            )
        if len(body) < len(hits):
            log.info("target '%s': leaving head layers %s out of the adapters (the head is trained fully)",
                     target, [n for n in hits if _in_head(n, head)])
        selected.extend(n for n in body if n not in selected)
    return selected


def apply_full(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def apply_head_only(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    """Linear probing: a frozen encoder, only the classification head is trained."""
    for name, p in model.named_parameters():
        p.requires_grad_(_in_head(name, head))
    return model


def _apply_lora(model: torch.nn.Module, config: MethodConfig, head: list[str], use_dora: bool) -> torch.nn.Module:
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


def apply_lora(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    return _apply_lora(model, config, head, use_dora=False)


def apply_dora(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    """DoRA: LoRA with a learned magnitude per output (peft `use_dora`)."""
    return _apply_lora(model, config, head, use_dora=True)


def apply_ia3(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    """IA3 (Liu et al. 2022): learned vectors that rescale keys, values and the feed-forward input."""
    from peft import IA3Config, TaskType, get_peft_model

    targets = resolve_target_modules(model, config.ia3_target_modules, head, "ia3_target_modules")
    feedforward = resolve_target_modules(model, config.ia3_feedforward_modules, head, "ia3_feedforward_modules") \
        if config.ia3_feedforward_modules else []
    missing = [n for n in feedforward if n not in targets]
    if missing:
        raise ModelError(f"ia3_feedforward_modules must be among ia3_target_modules; not targeted: {missing[:3]}")
    return get_peft_model(model, IA3Config(task_type=TaskType.SEQ_CLS, target_modules=targets,
                                           feedforward_modules=feedforward, modules_to_save=list(head)))


def apply_vera(model: torch.nn.Module, config: MethodConfig, head: list[str]) -> torch.nn.Module:
    """VeRA (Kopiczko et al. 2024): one pair of frozen random matrices shared by every layer, trained vectors."""
    from peft import TaskType, VeraConfig, get_peft_model

    targets = resolve_target_modules(model, config.vera_target_modules, head, "vera_target_modules")
    modules = dict(model.named_modules())
    shapes = {(modules[n].in_features, modules[n].out_features) for n in targets if hasattr(modules[n], "in_features")}
    if len(shapes) > 1:  # peft shares one projection pair sized for the largest layer; say what is adapted
        log.info("VeRA targets have %d layer shapes; the shared projections are sized for the largest", len(shapes))
    return get_peft_model(model, VeraConfig(task_type=TaskType.SEQ_CLS, r=config.vera_r, target_modules=targets,
                                            vera_dropout=0.0, save_projection=True, modules_to_save=list(head)))


@dataclass(frozen=True)
class Method:
    """A registry entry with its function imported."""
    spec: MethodSpec
    apply: Callable[[torch.nn.Module, MethodConfig, list[str]], torch.nn.Module]

    @property
    def name(self) -> str:
        return self.spec.name


def frozen_weights_dtype(setting: str, method: str, precision: str) -> str:
    """'bf16' or 'fp32': what the frozen base of `method` is stored in, given the compute precision."""
    if get_method(method).spec.trains_base:
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


def check_method(model: torch.nn.Module, config: MethodConfig, head: list[str], method: str) -> None:
    """What `apply` would reject, found before any folder is claimed or any run trains."""
    spec = get_method(method).spec
    if not spec.adapts_layers:
        return
    targets = resolve_target_modules(model, getattr(config, spec.target_modules_key), head, spec.target_modules_key)
    if spec.rank_key is None:
        return
    rank = getattr(config, spec.rank_key)
    modules = dict(model.named_modules())
    for name in targets:
        layer = modules[name]
        width = min(getattr(layer, "in_features", 0) or getattr(layer, "num_embeddings", 0),
                    getattr(layer, "out_features", 0) or getattr(layer, "embedding_dim", 0))
        if width and rank > width:
            raise ModelError(f"{spec.rank_key} {rank} is larger than layer '{name}' ({width} wide): a low-rank "
                             f"update cannot have a higher rank than the layer; use {spec.rank_key} <= {width}")


def get_method(name: str) -> Method:
    """The registry entry `name` with its function imported."""
    try:
        spec = get_spec(name)
    except ConfigError as exc:
        raise ModelError(str(exc)) from None
    module, _, function = spec.apply.partition(":")
    return Method(spec, getattr(importlib.import_module(module), function))
