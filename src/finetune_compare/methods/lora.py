"""LoRA (Hu et al. 2022) and DoRA (Liu et al. 2024): low-rank updates of the target layers + the full head."""

from __future__ import annotations

from dataclasses import dataclass

from ..fields import setting
from .registry import ADAPTER_EPOCHS, Method, MethodSettings, register_method
from .targets import targets_of


@dataclass(frozen=True)
class LoraSettings(MethodSettings):
    """peft's LoraConfig fields by peft's names (flat keys: the seed's lora_r, lora_alpha, lora_dropout, ...)."""

    prefix = "lora"
    renamed = {"alpha": "lora_alpha", "dropout": "lora_dropout"}  # the nested names before they were peft's
    learning_rate: float = setting(5e-4, "Learning rate for LoRA/DoRA: adapters need ~10x full FT's rate.",
                                   min=0, exclusive_min=True)
    r: int = setting(8, "LoRA rank.", min=1)
    lora_alpha: int = setting(16, "LoRA scaling numerator (scale = lora_alpha / r).", min=1)
    lora_dropout: float = setting(0.1, "Dropout on the LoRA branch.", min=0, max=1, exclusive_max=True)
    target_modules: list[str] = setting(["query", "value"], "Module name suffixes that get adapters (never the "
                                        "classification head).", nonempty=True)
    bias: str = setting("none", "Which biases LoRA trains.", choices=("none", "all", "lora_only"))


def lora_config(model, settings: LoraSettings, head: list[str], **extra):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS, r=settings.r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        target_modules=targets_of(model, settings, "target_modules", head), bias=settings.bias,
        modules_to_save=list(head),  # the new (or kept) head must be trained and saved with the adapter
        **extra)


def apply_lora(model, settings: LoraSettings, head: list[str]):
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, settings, head, use_dora=False))


def apply_dora(model, settings: LoraSettings, head: list[str]):
    """DoRA: LoRA with a learned magnitude per output (peft `use_dora`)."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, settings, head, use_dora=True))


SEARCH_SPACE = {
    "lora_learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
    "lora_r": {"type": "categorical", "choices": [4, 8, 16, 32]},
    "lora_alpha_multiple": {"type": "categorical", "choices": [1, 2, 4]},  # lora_alpha = multiple x r
    "lora_dropout": {"type": "float", "low": 0.0, "high": 0.2},
    "lora_target_modules": {"type": "categorical", "choices": [["query", "value"], ["query", "key", "value"]]},
    "num_epochs": ADAPTER_EPOCHS,
}

register_method(Method("lora", "LoRA adapters on the target layers + the full head", apply_lora, LoraSettings,
                       SEARCH_SPACE, targets_field="target_modules", rank_field="r"))
register_method(Method("dora", "DoRA (weight-decomposed LoRA) + the full head", apply_dora, LoraSettings,
                       SEARCH_SPACE, targets_field="target_modules", rank_field="r"))
