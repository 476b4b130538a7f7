"""IA3 (Liu et al. 2022): learned vectors that rescale keys, values and the feed-forward input + the full head."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError
from ..fields import setting
from .registry import ADAPTER_EPOCHS, Method, MethodSettings, register_method
from .targets import targets_of


@dataclass(frozen=True)
class Ia3Settings(MethodSettings):
    prefix = "ia3"
    learning_rate: float = setting(3e-3, "Learning rate for IA3's scaling vectors.", min=0, exclusive_min=True)
    target_modules: list[str] = setting(["key", "value", "output.dense"], "IA3: layer name suffixes whose "
                                        "activations get a learned scale (peft's default for BERT/RoBERTa).",
                                        nonempty=True)
    feedforward_modules: list[str] = setting(["output.dense"], "IA3: which of ia3_target_modules are feed-forward "
                                             "layers (scaled at their input).")


def apply_ia3(model, settings: Ia3Settings, head: list[str]):
    from peft import IA3Config, TaskType, get_peft_model

    targets = targets_of(model, settings, "target_modules", head)
    feedforward = targets_of(model, settings, "feedforward_modules", head) if settings.feedforward_modules else []
    missing = [n for n in feedforward if n not in targets]
    if missing:
        raise ModelError(f"ia3_feedforward_modules must be among ia3_target_modules; not targeted: {missing[:3]}")
    return get_peft_model(model, IA3Config(task_type=TaskType.SEQ_CLS, target_modules=targets,
                                           feedforward_modules=feedforward, modules_to_save=list(head)))


register_method(Method(
    "ia3", "IA3: learned scaling vectors on keys, values and the feed-forward input + the full head", apply_ia3,
    Ia3Settings, {"ia3_learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
                  "num_epochs": ADAPTER_EPOCHS},
    targets_field="target_modules",
))
