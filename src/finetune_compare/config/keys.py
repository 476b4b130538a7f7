"""Every config key: its section, type, default and help, and how nested and flat names map to it.

The keys are the sections' fields plus every registered method's settings under their flat alias (`lora_r` is
`method.lora.r`), so the table is read from the registry each time (a method registered later adds its keys).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..fields import default_value, type_name
from ..methods import settings_classes
from ..methods.generic import register_for_keys, register_named
from ..methods.registry import methods_using, per_registered_settings
from .data_section import DataConfig
from .method_section import GENERAL_KEYS, MethodKeys
from .sections import ExecutionConfig, ExperimentConfig, ModelConfig, SearchConfig, TrackingConfig, TrainingConfig

SECTION_CLASSES = {"model": ModelConfig, "data": DataConfig, "training": TrainingConfig, "experiment":
                   ExperimentConfig, "tracking": TrackingConfig, "search": SearchConfig, "execution": ExecutionConfig}
SECTIONS = ("model", "method", "data", "training", "experiment", "tracking", "search", "execution")  # the order config.yaml keeps
SECTION_PREFIX = {"tracking": "tracking_", "search": "hpo_", "execution": "execution_"}  # dropped from a key when nested under its section


@dataclass(frozen=True)
class Key:
    name: str  # the flat key
    section: str
    field: dataclasses.Field
    hint: Any
    method_prefix: str | None = None  # a method's own setting: method.<prefix>.<field>

    @property
    def default(self) -> Any:
        return default_value(self.field)

    @property
    def help(self) -> str:
        return self.field.metadata.get("help", "")

    @property
    def type_name(self) -> str:
        return type_name(self.hint)


@per_registered_settings
def config_keys() -> dict[str, Key]:
    """{flat key: Key} in config.yaml's order (sections in SECTIONS order, a method's settings after the general
    method keys)."""
    out: dict[str, Key] = {}
    for section in SECTIONS:
        if section == "method":
            hints = typing.get_type_hints(MethodKeys)
            fields = {f.name: f for f in dataclasses.fields(MethodKeys)}
            out.update({n: Key(n, "method", fields[n], hints[n]) for n in GENERAL_KEYS})
            for prefix, cls in settings_classes().items():
                hints = cls.hints()
                for f in dataclasses.fields(cls):
                    flat = cls.key_name(f.name)
                    out[flat] = Key(flat, "method", f, hints[f.name], prefix)
            continue
        cls = SECTION_CLASSES[section]
        hints = typing.get_type_hints(cls)
        out.update({f.name: Key(f.name, section, f, hints[f.name]) for f in dataclasses.fields(cls)})
    return out


def known_key(key: Any) -> bool:
    """`key` is a config key; a peft type's setting (`oft_r`) registers that type first."""
    if key in config_keys():
        return True
    register_for_keys([key])
    return key in config_keys()


def default_of(key: str) -> Any:
    """A key's default value (a fresh copy for list and mapping defaults)."""
    return config_keys()[key].default


def unknown_key_error(key: str, where: str = "config") -> ConfigError:
    keys = config_keys()
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(keys))}"
    return ConfigError(f"unknown {where} key '{key}'{hint}")


def method_setting_key(prefix: str, name: str, where: str) -> str:
    """The flat key of `method.<prefix>.<name>`, or one error naming where `name` belongs."""
    classes = settings_classes()
    cls = classes[prefix]
    name = cls.renamed.get(name, name)
    if name in cls.flat_keys().values():
        return cls.key_name(name)
    if getattr(cls, "generic", False):  # a peft type: its fields are peft's config class's
        fields = [f for f in cls.flat_keys().values() if f != "learning_rate"]
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        raise ConfigError(f"{where}: 'method.{prefix}.{name}': peft's {cls.peft_class} has no field '{name}'"
                          + (f" (did you mean '{close[0]}'?)" if close else "")
                          + f"; its fields: {', '.join(fields)} (and our learning_rate)")
    owners = [p for p, c in classes.items() if name in c.flat_keys().values()]
    place = f"method.{prefix}.{name}"
    if owners:
        right = ", ".join(f"method.{p}.{name} (methods {', '.join(methods_using(p))})" for p in owners)
        raise ConfigError(f"{where}: '{place}': {prefix} has no setting '{name}'; it is a setting of {right}")
    if name in config_keys():
        raise ConfigError(f"{where}: '{place}': '{name}' is not a {prefix} setting but a '{config_keys()[name].section}'"
                          f" key; to set it for one method: method_overrides.{methods_using(prefix)[0]}.{name}")
    allowed = ", ".join(cls.flat_keys().values())
    raise ConfigError(f"{where}: '{place}': unknown {prefix} setting '{name}'; {prefix} settings: {allowed}")


def nested_key(section: str, sub: str, where: str) -> str:
    """The flat key of `section.sub`, or a ConfigError naming the section the key belongs to."""
    keys = config_keys()
    for candidate in (SECTION_PREFIX.get(section, "") + sub, sub):
        if candidate in keys and keys[candidate].section == section:
            return candidate
    if sub in keys:
        raise ConfigError(f"{where}: '{section}.{sub}': '{sub}' belongs to section '{keys[sub].section}', "
                          f"not '{section}'")
    raise unknown_key_error(f"{section}.{sub}", where)


def flat_key(key: str, where: str = "--set") -> str:
    """`training.num_epochs` -> num_epochs, `method.lora.r` -> lora_r; a flat key as it is."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "method":
        register_named([parts[1]])  # a peft type by its name is a method with settings
        if parts[1] in settings_classes():
            return method_setting_key(parts[1], parts[2], where)
    if len(parts) == 2 and parts[0] in SECTIONS:
        return nested_key(parts[0], parts[1], where)
    return key


def flatten_sections(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Keys nested under their section (`training: {num_epochs: 5}`, `method: {lora: {r: 16}}`) made flat."""
    out: dict[str, Any] = {}
    prefixes = settings_classes()

    def put(flat: str, value: Any, nested_under: str) -> None:
        if flat in out or flat in data:
            raise ConfigError(f"{where}: '{flat}' is given twice (flat and under '{nested_under}:')")
        out[flat] = value

    for key, value in data.items():
        if key not in SECTIONS:
            out[key] = value
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping of its keys, got {type(value).__name__}")
        if key == "method":
            register_named([sub for sub in value if sub not in prefixes and sub not in SECTIONS])
            prefixes = settings_classes()
        for sub, v in value.items():
            if key == "method" and sub in prefixes:
                if not isinstance(v, dict):
                    raise ConfigError(f"{where}: 'method.{sub}' must be a mapping of {sub} settings, got "
                                      f"{type(v).__name__}")
                for name, item in v.items():
                    put(method_setting_key(sub, str(name), where), item, f"method.{sub}")
            else:
                put(nested_key(key, str(sub), where), v, key)
    return out


def override_keys(method: str, overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """One method's `method_overrides` entry with flat keys: sections and the method's own settings may be nested
    (`{training: {num_epochs: 4}, r: 16}` for lora is `{num_epochs: 4, lora_r: 16}`)."""
    from ..methods import get_method

    cls = get_method(method).settings
    own = {} if cls is None else {name: flat for flat, name in cls.flat_keys().items()}
    if cls is not None:  # earlier names of renamed fields (lora's alpha is lora_alpha)
        own.update({old: cls.key_name(new) for old, new in cls.renamed.items()})
    plain = {own.get(k, k) if k not in config_keys() else k: v for k, v in overrides.items()}
    return flatten_sections(plain, where)
