"""LoHa (Hyeon-Woo et al. 2022, FedPara; LyCORIS, Yeh et al. 2024): the update of each target layer is the
Hadamard product of two low-rank products, (W1a W1b) * (W2a W2b).

For classifier users it is the natural next comparison after LoRA: with 2x LoRA's parameters at the same `r`, the
update can reach rank r^2 instead of r, so "is LoRA's low rank what limits it on this task?" gets a direct answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fields import setting
from .registry import ADAPTER_EPOCHS, Method, MethodSettings, register_method
from .targets import targets_of


@dataclass(frozen=True)
class LohaSettings(MethodSettings):
    prefix = "loha"
    learning_rate: float = setting(5e-4, "Learning rate for LoHa's factors (LoRA's default: adapters need ~10x "
                                   "full FT's rate).", min=0, exclusive_min=True)
    r: int = setting(8, "LoHa rank of each of the two factor pairs (the update can reach rank r^2).", min=1)
    alpha: int = setting(16, "LoHa scaling numerator (scale = alpha / r).", min=1)
    rank_dropout: float = setting(0.0, "LoHa: dropout over the rank dimension of each update during training.",
                                  min=0, max=1, exclusive_max=True)
    module_dropout: float = setting(0.0, "LoHa: probability of switching a layer's update off in a training step.",
                                    min=0, max=1, exclusive_max=True)
    target_modules: list[str] = setting(["query", "value"], "LoHa: layer name suffixes that get adapters.",
                                        nonempty=True)


def apply_loha(model, settings: LohaSettings, head: list[str]):
    from peft import LoHaConfig, TaskType, get_peft_model

    return get_peft_model(model, LoHaConfig(
        task_type=TaskType.SEQ_CLS, r=settings.r, alpha=settings.alpha, rank_dropout=settings.rank_dropout,
        module_dropout=settings.module_dropout, target_modules=targets_of(model, settings, "target_modules", head),
        modules_to_save=list(head)))


register_method(Method(
    "loha", "LoHa: Hadamard product of two low-rank updates on the target layers + the full head", apply_loha,
    LohaSettings, {"loha_learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
                   "loha_r": {"type": "categorical", "choices": [4, 8, 16]}, "num_epochs": ADAPTER_EPOCHS},
    targets_field="target_modules", rank_field="r",
))
