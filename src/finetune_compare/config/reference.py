"""The reference listing of every key (docs/configuration.md and `finetune-compare config --list`)."""

from __future__ import annotations

from typing import Any

from ..methods import settings_classes
from .keys import config_keys


def describe_keys() -> list[tuple[str, str, str, Any, str]]:
    """(key, section, type, default, help) for every key, in config.yaml's order; a method's own setting is in
    section `method.<prefix>` (`lora_r` is `method: {lora: {r: ...}}`)."""
    listed = settings_classes(generic=False)  # a peft type by name has peft's fields: docs/methods.md says how
    return [(k.name, k.section + (f".{k.method_prefix}" if k.method_prefix else ""), k.type_name, k.default, k.help)
            for k in config_keys().values() if k.method_prefix is None or k.method_prefix in listed]
