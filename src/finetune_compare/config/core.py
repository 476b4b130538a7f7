"""`Config`: the experiment configuration, composed of its sections; frozen and validated on construction.

`Config(use_lora=True, num_epochs=5)` (the seed's flat keys) builds every section; `config.training`,
`config.data`, ... are the sections themselves, and every flat key also reads as an attribute (`config.num_epochs`,
`config.lora_r`). Checks between sections (per-method overrides, the sweep grid, the seed range) run here.
"""

from __future__ import annotations

from typing import Any

from ..fields import FrozenFlatKeys
from .data_section import DataConfig
from .keys import SECTION_CLASSES, SECTIONS, config_keys, flatten_sections, unknown_key_error
from .method_section import MethodConfig, register_peft_types_named
from .rules import check_between_sections
from .sections import ExecutionConfig, ExperimentConfig, ModelConfig, SearchConfig, TrackingConfig, TrainingConfig

SECTION_TYPES = {**SECTION_CLASSES, "method": MethodConfig}


class Config(FrozenFlatKeys):
    """The resolved configuration of one command: eight sections (model, method, data, training, experiment,
    tracking, search, execution), each a frozen, validated type."""

    __slots__ = SECTIONS
    model: ModelConfig
    method: MethodConfig
    data: DataConfig
    training: TrainingConfig
    experiment: ExperimentConfig
    tracking: TrackingConfig
    search: SearchConfig
    execution: ExecutionConfig

    def __init__(self, **values: Any) -> None:
        register_peft_types_named(values, config_keys())  # a peft type the config names is a method, with its keys
        keys = config_keys()
        grouped: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        for key, value in values.items():
            if key not in keys:
                raise unknown_key_error(str(key))
            grouped[keys[key].section][key] = value
        for section in SECTIONS:
            object.__setattr__(self, section, SECTION_TYPES[section](**grouped[section]))
        check_between_sections(self)

    def __getattr__(self, name: str) -> Any:
        """A flat key, read from its section (`config.lora_r`): kept for the Python API and scripts, where flat keys
        are the documented names (files, --set and Config(...) take them). The project's own code reads through the
        sections (`config.training.batch_size`); tests/test_import_boundaries.py holds that for experiments/ and the
        CLI."""
        key = config_keys().get(name) if not name.startswith("_") else None
        if key is None:
            raise AttributeError(f"'Config' has no key '{name}'")
        return getattr(getattr(self, key.section), name)

    def __repr__(self) -> str:
        keys = config_keys()
        changed = {k: v for k, v in self.to_dict().items() if v != keys[k].default}
        return f"Config({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _set_section(self, section: str, value: Any) -> None:
        """Only for the checks between sections (normalising the sweep grid); a Config is otherwise frozen."""
        object.__setattr__(self, section, value)

    @property
    def single_method(self) -> str:
        """The method of a single run, from the seed's `use_lora` switch."""
        return "lora" if self.use_lora else "full"

    def learning_rate_for(self, method: str) -> float:
        return self.method.learning_rate_for(method)

    @property
    def head_lr(self) -> float:
        return self.method.head_lr

    def for_method(self, method: str) -> "Config":
        """The config a run of `method` uses: a variant's settings (`method_variants[method]`), then
        `method_overrides[method]` over them."""
        variant = {k: v for k, v in self.method_variants.get(method, {}).items() if k != "base"}
        overrides = {**variant, **self.method_overrides.get(method, {})}
        return self.replace(**overrides) if overrides else self

    def to_dict(self) -> dict[str, Any]:
        """Every key, flat, in config.yaml's order."""
        out: dict[str, Any] = {}
        for section in SECTIONS:
            out.update(getattr(self, section).to_dict())
        return out

    def replace(self, **changes: Any) -> "Config":
        return Config(**flatten_sections({**self.to_dict(), **changes}))
