"""The method section: which methods run, their learning rates, and every registered method's own settings.

The general keys are declared here; each method's settings are declared in its own module of
`finetune_compare.methods` and composed in at construction, so adding a method adds its keys here without an edit.
A config names a method's setting nested (`method: {lora: {r: 16}}`) or by its flat alias (`lora_r: 16`, the seed's
form); both are the same value.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError
from ..fields import FrozenFlatKeys, ValidatedSettings, default_value, setting
from ..methods import get_method, method_names, settings_classes
from ..methods.generic import register_for_keys, register_named
from ..methods.peft_types import is_peft_type, peft_type_names, refusal
from ..methods.registry import MethodSettings, per_registered_settings, register_variant


@dataclass(frozen=True)
class MethodKeys(ValidatedSettings):
    """The method section's general keys."""

    use_lora: bool = setting(True, "Seed key: a single run (`--mode train`) uses LoRA when true, full FT when false.")
    methods: list[str] = setting(["full", "lora"], "Methods that `--mode compare` runs (see the method registry).",
                                 choices=method_names, nonempty=True)
    learning_rate: float = setting(2e-5, "Learning rate for full fine-tuning (and head-only). 0 trains nothing: "
                                   "a control whose forgetting and drift figures must read 0.", min=0)
    head_learning_rate: Optional[float] = setting(
        None, "Learning rate of the classification head under every method (default: learning_rate, full FT's), "
        "so head and method effects are not confounded.", min=0)


GENERAL_KEYS = tuple(f.name for f in dataclasses.fields(MethodKeys))


def register_variants(variants: Any) -> None:
    """Register each of `method_variants`' names as a method trained like its base (its settings are applied by
    `Config.for_method`); the entries' shape and settings are checked with the other keys (config/rules.py)."""
    if not isinstance(variants, dict):
        if variants is not None:
            raise ConfigError("config key 'method_variants': expected a mapping {name: {base: METHOD, KEY: VALUE, "
                              f"...}}, got {type(variants).__name__}")
        return
    for name, entry in variants.items():
        base = entry.get("base") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(base, str):
            raise ConfigError(f"config key 'method_variants.{name}': expected {{base: METHOD, KEY: VALUE, ...}} (the "
                              "method it trains like, and the settings that make it a variant), got "
                              f"{entry!r}")
        register_named([base])
        if base not in method_names():
            raise ConfigError(f"config key 'method_variants.{name}.base': unknown method {base!r}; allowed: "
                              f"{', '.join(method_names())}, or a peft method type by its lower-case name")
        register_variant(name, base)


def register_peft_types_named(values: dict[str, Any], known: Any = ()) -> None:
    """Register the methods a config names before its keys are read: its `method_variants`, and the peft types it
    names (`methods`, `reference`, `method_overrides`, `oft_r`-style keys; a peft type is a method by its name, with no
    file of ours). A name that is neither registered nor a peft type is one error listing both. `known`: the keys
    that need nothing registered."""
    register_variants(values.get("method_variants"))
    methods = values.get("methods")
    names = [methods] if isinstance(methods, str) else list(methods or [])
    overrides = values.get("method_overrides")
    extra = [values.get("reference"), *(overrides if isinstance(overrides, dict) else ())]
    for name in names:
        if isinstance(name, str) and name not in method_names() and not is_peft_type(name):
            usable = [t for t in peft_type_names() if t not in method_names() and not refusal(t)]
            raise ConfigError(f"config key 'methods': {name!r} is not allowed; allowed: {', '.join(method_names())}, or a "
                              f"peft method type by its lower-case name: {', '.join(usable)}")
    register_named([*names, *extra])  # (what is registered already, or no peft type, is left as it is)
    register_for_keys([k for k in values if k not in known and k not in GENERAL_KEYS])


@per_registered_settings
def method_aliases() -> dict[str, tuple[type[MethodSettings], str]]:
    """{flat key: (settings class, field)} of every registered method's settings, e.g. lora_r -> (LoraSettings, r)."""
    return {flat: (cls, name) for cls in settings_classes().values() for flat, name in cls.flat_keys().items()}


class MethodConfig(FrozenFlatKeys):
    """How each method adapts the model, and its learning rate: read by the methods and the trainer.

    Built from flat keys (`MethodConfig(lora_r=8)`), frozen, validated with the config's messages; a method's
    settings object is `settings_of(method)`, and every flat key reads as an attribute (`.lora_r`).
    """

    section = "method"
    prefix = ""

    def __init__(self, **values: Any) -> None:
        register_peft_types_named(values, method_aliases())
        aliases = method_aliases()
        per_prefix: dict[str, dict[str, Any]] = {}
        for key in values:
            if key in aliases:
                cls, name = aliases[key]
                per_prefix.setdefault(cls.prefix, {})[name] = values[key]
            elif key not in GENERAL_KEYS:
                raise ConfigError(f"config key '{key}' is not a method setting")
        object.__setattr__(self, "_keys", MethodKeys(**{k: v for k, v in values.items() if k in GENERAL_KEYS}))
        object.__setattr__(self, "_settings", {prefix: cls(**per_prefix.get(prefix, {}))
                                               for prefix, cls in settings_classes().items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in GENERAL_KEYS:
            return getattr(self._keys, name)
        alias = method_aliases().get(name)
        if alias is None:
            raise AttributeError(f"the method section has no key '{name}'")
        return getattr(self._settings[alias[0].prefix], alias[1])

    def __repr__(self) -> str:
        return f"MethodConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def settings_of(self, method: str) -> MethodSettings | None:
        """The settings object `method` reads (None for a method without settings, e.g. full)."""
        cls = get_method(method).settings
        return None if cls is None else self._settings[cls.prefix]

    def to_dict(self) -> dict[str, Any]:
        """Flat keys: the general keys, then each method's settings by alias (what config.yaml records)."""
        out = self._keys.to_dict()
        for settings in self._settings.values():
            if getattr(settings, "generic", False) and not self._named(settings):
                continue  # a peft type registered by another config of this process: not this config's
            out.update({settings.key_name(k): v for k, v in settings.to_dict().items()})
        return out

    def _named(self, settings: MethodSettings) -> bool:
        """This config names the peft type `settings` belong to, or sets one of them (compared with the fields'
        defaults: building a default object would ask peft to validate it again on every to_dict)."""
        return settings.prefix in self._keys.methods or any(
            getattr(settings, f.name) != default_value(f) for f in dataclasses.fields(settings))

    def learning_rate_for(self, method: str) -> float:
        """Each method gets its own learning rate (its settings' `learning_rate`, else `learning_rate`): one shared
        rate would bias the comparison."""
        return getattr(self, get_method(method).learning_rate_key)

    @property
    def head_lr(self) -> float:
        """The classification head's rate under every method: `head_learning_rate`, else full FT's rate."""
        return self.head_learning_rate or self.learning_rate

