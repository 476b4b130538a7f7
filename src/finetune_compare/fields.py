"""Typed settings fields: how a setting is declared, and how a value is checked against its declaration.

A setting is a dataclass field made with `setting(default, help, **constraints)`. `validate_fields` coerces each
value to its declared type and checks its constraints, raising `ConfigError` with the key, the value and what is
allowed. The config's sections and every method's settings (`finetune_compare.methods`) are declared this way, so
one wording serves every bad value. A leaf: it imports nothing of the domain.

Coercion is deliberately narrow (YAML's `2e-5` string is a number, 8.0 is the integer 8), and nothing else is
guessed: `"5"` is not an integer and `"yes"` is not true, so a quoted typo fails instead of meaning something.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from typing import Any, Iterable, Literal

from .errors import ConfigError


def setting(default: Any, help: str, **constraints: Any) -> Any:
    """A dataclass field with a help text and validation constraints (min, max, exclusive_min, exclusive_max,
    choices (a collection, or a function read at validation time), nonempty, pattern, bool_alias)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d),
                                 metadata={"help": help, **constraints})
    return dataclasses.field(default=default, metadata={"help": help, **constraints})


def default_value(f: dataclasses.Field) -> Any:
    """A field's default (a fresh copy for list and mapping defaults)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def plain(value: Any) -> Any:
    """A value as YAML/JSON writes it: tuples as lists, mappings copied."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, (list, tuple)) else value


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_name(a) for a in args) + " or null"
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping"}.get(tp, str(tp))


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming key, value and expected type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return coerce(key, value, inner)
    bad = ConfigError(f"config key '{key}': expected {type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r} ({type(value).__name__})")
        return dict(value)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, str):  # `--set lora_target_modules=query` or "query,value"
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad
        return [coerce(key, v, inner) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            value = float(value)
        elif isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            # PyYAML (YAML 1.1) reads `2e-5` as a string; accept it as the number it is.
            value = float(value)
        else:
            raise bad
        if not math.isfinite(value):
            raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a bug, not user input


def check_constraints(key: str, value: Any, meta: dict) -> None:
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    if meta.get("nonempty") and (not value.strip() if isinstance(value, str) else not value):
        raise ConfigError(f"config key '{key}': must not be empty")
    if "choices" in meta:
        choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]  # a registry: read now
        for item in items:
            if item not in choices:
                allowed = ", ".join(map(str, choices))
                raise ConfigError(f"config key '{key}': {item!r} is not allowed; allowed: {allowed}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], str(value)):
        allowed = meta["pattern"].replace("|", ", ").replace("[0-9]+", "N")
        raise ConfigError(f"config key '{key}': {value!r} is not allowed; allowed: {allowed}")
    if isinstance(value, list) and len(set(value)) != len(value):
        raise ConfigError(f"config key '{key}': duplicate entries in {value!r}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None:
        ok = value > lo if meta.get("exclusive_min") else value >= lo
        if not ok:
            rel = ">" if meta.get("exclusive_min") else ">="
            raise ConfigError(f"config key '{key}': must be {rel} {lo}, got {value!r}")
    if hi is not None:
        ok = value < hi if meta.get("exclusive_max") else value <= hi
        if not ok:
            rel = "<" if meta.get("exclusive_max") else "<="
            raise ConfigError(f"config key '{key}': must be {rel} {hi}, got {value!r}")


class ValidatedSettings:
    """Base of a frozen dataclass of settings that checks itself on construction (types, ranges, choices).

    `key_name(field)` is the name a message uses for a field: the config key a user writes (a method's
    settings are named by their flat alias, e.g. `lora_r`, so the wording is the same however it was given).
    """

    @classmethod
    def key_name(cls, name: str) -> str:
        return name

    def __post_init__(self) -> None:
        validate_fields(self, typing.get_type_hints(type(self)), dataclasses.fields(self), self.key_name)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


class FrozenFlatKeys:
    """A frozen object built from flat keys (`cls(**flat)`) that gives them back as `to_dict()`: equal when they
    are equal, pickled and copied as them. Subclasses set their state with `object.__setattr__` in `__init__`."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  (lists inside)

    def __reduce__(self):
        return (_from_flat_keys, (type(self), self.to_dict()))


def _from_flat_keys(cls: type, values: dict[str, Any]) -> Any:
    return cls(**values)


def validate_fields(obj: Any, hints: dict[str, Any], fields: Iterable[dataclasses.Field],
                    key_name: typing.Callable[[str], str] = lambda n: n) -> None:
    """Coerce each field of `obj` to its declared type and check its constraints (in place, frozen-safe)."""
    for f in fields:
        value = getattr(obj, f.name)
        if isinstance(value, bool) and value in f.metadata.get("bool_alias", {}):
            value = f.metadata["bool_alias"][value]  # YAML 1.1 reads a bare `no` as false
        key = key_name(f.name)
        value = coerce(key, value, hints[f.name])
        check_constraints(key, value, f.metadata)
        object.__setattr__(obj, f.name, value)
