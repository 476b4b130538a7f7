"""Rules between sections: which keys may differ per method (`method_overrides`) or per sweep point (`sweep`)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..methods import method_names
from ..metric_names import SOURCE_METRICS, primary_metric_names
from .keys import config_keys, known_key, override_keys, unknown_key_error

if TYPE_CHECKING:
    from .core import Config

log = logging.getLogger(__name__)

# Keys that may differ per method besides every method's own settings: how the method is trained.
TRAINING_OVERRIDE_KEYS = frozenset({
    "learning_rate", "num_epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "warmup_ratio",
    "weight_decay", "max_grad_norm", "patience", "evaluations_per_epoch", "batch_grouping", "mixed_precision",
    "gradient_checkpointing", "base_weights_dtype",
})


def method_override_keys() -> frozenset[str]:
    """Keys `method_overrides` may set: how a method adapts the model (its settings) and how it is trained."""
    return TRAINING_OVERRIDE_KEYS | {k.name for k in config_keys().values() if k.method_prefix}


# Keys a sweep cannot vary, and why (the rest may be swept: size, epochs, rates, rank, max_length, ...).
SWEEP_FIXED = {
    "sweep": "a sweep cannot sweep itself",
    "output_dir": "each point's folder is set by the sweep (OUTPUT/points/KEY=VALUE)",
    **{k: "the points share one loaded and cleaned data pool" for k in (
        "data_source", "data_dir", "sources", "clean_text", "train_file", "validation_file", "test_file",
        "dataset_name", "dataset_config", "train_split", "validation_split", "test_split", "text_column",
        "label_column", "group_column", "label_names")},
    "seed": "every point uses the same paired seeds and the same test draw",
    "num_runs": "every point runs the same number of paired seeds",
    "methods": "every point compares the same methods",
    "use_lora": "a sweep runs comparisons, which use `methods`",
    "method_overrides": "sweep the method's own key instead (e.g. lora_r, lora_learning_rate)",
    "method_variants": "every point compares the same methods",
    "search_space": "a sweep does not search",
    "save_dir": "models are saved inside each point's runs",
}
MAX_SWEEP_KEYS = 2


def sweep_fixed_reason(key: str) -> str | None:
    if key in SWEEP_FIXED:
        return SWEEP_FIXED[key]
    if key.startswith(("tracking_", "hpo_")):
        return "tracking and search settings are shared by the whole sweep"
    return None


def check_between_sections(config: "Config") -> None:
    # first: the override and sweep checks build configs that would fail on it, under their own name
    check_reference(config)
    check_primary_metric(config)
    check_method_variants(config)
    check_method_overrides(config)
    check_sweep(config)
    check_seed_range(config)


def check_reference(config: "Config") -> None:
    methods = config.method.methods
    if len(methods) > 1 and config.experiment.reference not in methods:
        raise ConfigError(f"config key 'reference': {config.experiment.reference!r} is not one of methods "
                          f"({', '.join(methods)}), so no method would be compared with it; set reference to the "
                          "method the others are compared with")


def check_primary_metric(config: "Config") -> None:
    """primary_metric names a score these runs will record (your own data's group names: checked again once the
    data is read, `experiments.execution.preflight.check_data_fits`)."""
    data, name = config.data, config.experiment.primary_metric
    allowed = primary_metric_names(data.sources or [], bool(data.holdout_sources))
    if name in allowed:
        return
    if data.uses_own_data and data.group_column and name.startswith(tuple(f"{m}_" for m in SOURCE_METRICS)):
        return
    groups = ("<metric>_<group> for a group of group_column (" + ", ".join(SOURCE_METRICS) + ")"
              if data.uses_own_data and data.group_column else None)
    raise ConfigError(f"config key 'primary_metric': {name!r} is not a score these runs record; allowed: "
                      f"{', '.join([*allowed, *filter(None, [groups])])}"
                      + ("" if data.holdout_sources or "domain" not in name else
                         " (in-domain and out-of-domain scores need holdout_sources)"))


def check_seed_range(config: "Config") -> None:
    last_seed = config.seed + config.num_runs - 1
    if last_seed >= 2 ** 32:
        raise ConfigError(f"config key 'seed': seed + num_runs - 1 = {last_seed} must be < 2^32 (numpy's seed range)")


def _with(config: "Config", values: dict) -> "Config":
    """A config of the same class from flat, checked keys: what an override or a sweep point would be. (The class of
    `config` rather than an import of core or loading, which import this module: no import circle.)"""
    return type(config)(**values)


def _checked_settings(config: "Config", method: str, overrides: Any, where: str) -> dict:
    """One method's per-method settings (a `method_overrides` or `method_variants` entry) as flat keys, each key
    allowed per method and each value valid, checked before any folder is claimed or any run trains."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"config key '{where}': expected a mapping of config keys to values")
    allowed = method_override_keys()
    overrides = override_keys(method, overrides, where)
    for key in overrides:
        if not known_key(key):
            raise unknown_key_error(str(key), where)
        if key in ("budget", "budget_unit"):
            raise ConfigError(f"config key '{where}.{key}': a declared budget is the same for every method (that is "
                              "what makes the budgets equal); set it once, or use budget_unit: epochs with "
                              "per-method num_epochs and the reports state both")
        if key not in allowed:
            # the data, the model and the folder are built once per comparison, so a per-method value
            # here would be recorded in that method's results without having been used
            raise ConfigError(
                f"config key '{where}.{key}': '{key}' cannot differ between methods (data, model, output and "
                "experiment keys are shared by every method of a comparison, so the runs stay paired); allowed per "
                f"method: {', '.join(sorted(allowed))}")
    # the values too, now: a bad one must fail before any folder is claimed or any run trains
    try:
        _with(config, {**config.to_dict(), **overrides, "method_overrides": {}, "method_variants": {}, "sweep": {}})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if config.budget_unit in ("steps", "examples") and "num_epochs" in overrides:
        log.warning("%s.num_epochs=%s does not apply: budget_unit '%s' gives every method the same budget (%g %s)",
                    where, overrides["num_epochs"], config.budget_unit, config.budget, config.budget_unit)
    return overrides


def check_method_variants(config: "Config") -> None:
    """Each variant's settings (its base is registered already, by the config's construction), recorded flat."""
    normalised = {}
    for name, entry in config.method_variants.items():
        settings = {k: v for k, v in entry.items() if k != "base"}
        normalised[name] = {"base": entry["base"],
                            **_checked_settings(config, name, settings, f"method_variants.{name}")}
    if normalised != config.method_variants:
        config._set_section("experiment", dataclasses.replace(config.experiment, method_variants=normalised))


def check_method_overrides(config: "Config") -> None:
    normalised = {}
    for method, overrides in config.method_overrides.items():
        if method not in method_names():
            raise ConfigError(f"config key 'method_overrides': unknown method {method!r}; allowed: "
                              f"{', '.join(method_names())}")
        normalised[method] = _checked_settings(config, method, overrides, f"method_overrides.{method}")
    if normalised != config.method_overrides:  # nested or shorthand keys, recorded flat
        config._set_section("experiment", dataclasses.replace(config.experiment, method_overrides=normalised))


def check_sweep(config: "Config") -> None:
    """Every key may vary per point and every value is one its key accepts: checked before any training."""
    if len(config.sweep) > MAX_SWEEP_KEYS:
        raise ConfigError(f"config key 'sweep': at most {MAX_SWEEP_KEYS} keys (a grid over one or two), got "
                          f"{len(config.sweep)}: {', '.join(map(str, config.sweep))}")
    normalised: dict[str, list] = {}
    for key, values in config.sweep.items():
        if not known_key(key):
            raise unknown_key_error(str(key), "sweep")
        reason = sweep_fixed_reason(key)
        if reason:
            raise ConfigError(f"sweep key '{key}' cannot vary per point: {reason}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep key '{key}': expected a non-empty list of values, got {values!r}")
        seen = []
        for value in values:
            try:
                point = _with(config, {**config.to_dict(), "sweep": {}, key: value})
            except ConfigError as exc:
                raise ConfigError(f"sweep key '{key}', value {value!r}: {exc}") from None
            if getattr(point, key) in seen:
                raise ConfigError(f"sweep key '{key}': value {value!r} is listed twice")
            seen.append(getattr(point, key))
        normalised[key] = seen  # as the key reads them ('1e-4' -> 0.0001): folder names and records agree
    if normalised:
        config._set_section("experiment", dataclasses.replace(config.experiment, sweep=normalised))
