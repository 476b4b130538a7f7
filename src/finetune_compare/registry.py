"""The method registry: one entry per fine-tuning method, in the spirit of peft's `register_peft_method`.

Config choices, the CLI, Optuna's default search space, training (which learning rate),
the pre-training checks (target layers, rank), accounting and saving all read this one
table. It imports no torch, so `config` stays a leaf: `apply` names the function that
makes the model trainable ("module:function") and is imported only when a model is built.

Adding a method is one `register_method(MethodSpec(...))` (here, or in your own code
before the config is built) plus its test; the function receives (model, the method section `MethodConfig`, head
module names) and returns the model with the trainable parameters it chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    apply: str  # "package.module:function"
    learning_rate_key: str = "learning_rate"  # the config key that sets this method's learning rate
    search_space: dict = field(default_factory=dict)  # Optuna's defaults for this method (see optimize.py)
    target_modules_key: str | None = None  # config key of layer-name suffixes resolved against the model
    rank_key: str | None = None  # config key of a low-rank update's rank, checked against the layers' width
    trains_base: bool = False  # every base weight trains (full FT): fp32 master weights, no frozen base

    @property
    def adapts_layers(self) -> bool:
        """Its layers are chosen by name, so the model must be loaded to check the config before training."""
        return self.target_modules_key is not None


REGISTRY: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"method '{spec.name}' is already registered")
    if ":" not in spec.apply:
        raise ValueError(f"method '{spec.name}': apply must be 'module:function', got {spec.apply!r}")
    REGISTRY[spec.name] = spec
    return spec


def method_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_spec(name: str) -> MethodSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown method '{name}'; allowed: {', '.join(REGISTRY)}") from None


_ADAPTER_EPOCHS = {"type": "int", "low": 3, "high": 15}  # adapters learn from fewer weights: longer budgets

register_method(MethodSpec(
    "full", "full fine-tuning: every weight is trained", "finetune_compare.models.methods:apply_full",
    search_space={"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
                  "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
                  "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
                  "num_epochs": {"type": "int", "low": 1, "high": 5}},
    trains_base=True,
))
_LORA_SPACE = {
    "lora_learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
    "lora_r": {"type": "categorical", "choices": [4, 8, 16, 32]},
    "lora_alpha_multiple": {"type": "categorical", "choices": [1, 2, 4]},  # lora_alpha = multiple x r
    "lora_dropout": {"type": "float", "low": 0.0, "high": 0.2},
    "lora_target_modules": {"type": "categorical", "choices": [["query", "value"], ["query", "key", "value"]]},
    "num_epochs": _ADAPTER_EPOCHS,
}
register_method(MethodSpec(
    "lora", "LoRA adapters on the target layers + the full head", "finetune_compare.models.methods:apply_lora",
    "lora_learning_rate", _LORA_SPACE, "lora_target_modules", "lora_r",
))
register_method(MethodSpec(
    "dora", "DoRA (weight-decomposed LoRA) + the full head", "finetune_compare.models.methods:apply_dora",
    "lora_learning_rate", _LORA_SPACE, "lora_target_modules", "lora_r",
))
register_method(MethodSpec(
    "ia3", "IA3: learned scaling vectors on keys, values and the feed-forward input + the full head",
    "finetune_compare.models.methods:apply_ia3", "ia3_learning_rate",
    {"ia3_learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}, "num_epochs": _ADAPTER_EPOCHS},
    "ia3_target_modules",
))
register_method(MethodSpec(
    "vera", "VeRA: shared frozen random low-rank matrices with trained scaling vectors + the full head",
    "finetune_compare.models.methods:apply_vera", "vera_learning_rate",
    {"vera_learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
     "vera_r": {"type": "categorical", "choices": [64, 256, 1024]}, "num_epochs": _ADAPTER_EPOCHS},
    "vera_target_modules",
))
register_method(MethodSpec(
    "head", "frozen encoder, only the head is trained", "finetune_compare.models.methods:apply_head_only",
    search_space={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                  "num_epochs": _ADAPTER_EPOCHS},
))
