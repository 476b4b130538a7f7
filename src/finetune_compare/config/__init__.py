"""The experiment configuration: typed sections composed into one frozen, validated `Config`.

- `sections`, `data_section`, `method_section`: the sections, each a frozen type that validates itself (the
  method section composes every registered method's own settings, declared in `finetune_compare.methods`);
- `keys`: every key's section, type and default, and how nested names (`training: {num_epochs: 5}`,
  `method: {lora: {r: 16}}`, `--set method.lora.r=16`) map to the seed's flat keys;
- `core`: `Config`; `rules`: per-method overrides and sweep grids; `loading`: YAML, `--set`, `--sweep`;
- `reference`: the listing docs/configuration.md is generated from.
"""

from ..redaction import redact
from .core import SECTION_TYPES, Config
from .data_section import FILE_KEYS, DataConfig, uses_own_data
from .keys import SECTIONS, config_keys, default_of, flat_key, flatten_sections, unknown_key_error
from .loading import config_to_yaml, from_dict, load_config, load_yaml, parse_overrides, parse_sweep
from .method_section import MethodConfig
from .reference import describe_keys
from .rules import MAX_SWEEP_KEYS, SWEEP_FIXED, method_override_keys, sweep_fixed_reason
from .sections import (PRIMARY_METRICS, ExecutionConfig, ExperimentConfig, ModelConfig, SearchConfig, TrackingConfig,
                       TrainingConfig)

__all__ = ["Config", "DataConfig", "ExperimentConfig", "FILE_KEYS", "MAX_SWEEP_KEYS", "MethodConfig", "ModelConfig",
           "ExecutionConfig", "PRIMARY_METRICS", "SECTIONS", "SECTION_TYPES", "SWEEP_FIXED", "SearchConfig", "TrackingConfig",
           "TrainingConfig", "config_keys", "config_to_yaml", "default_of", "describe_keys", "flat_key",
           "flatten_sections", "from_dict", "load_config", "load_yaml", "method_override_keys", "parse_overrides",
           "parse_sweep", "redact", "sweep_fixed_reason", "unknown_key_error", "uses_own_data"]
