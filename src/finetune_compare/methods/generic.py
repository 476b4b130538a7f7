"""Any peft method by its peft name, without a file of ours: `methods: [full, oft]`, `method: {oft: {r: 8}}`.

When a config names a peft type that is not registered (`oft`, `lokr`, `hra`, `fourierft`, ...), `register_peft_type`
builds its `Method` from peft's own config class: its settings are that class's fields under peft's names and
defaults (flat keys `oft_r`, ...), plus `learning_rate`; they are passed straight to the class, so peft's validation
applies and an unknown field is one error listing the class's fields. We set what every method here shares: the task
type (sequence classification), the head (trained and saved in full through `modules_to_save`), and the target layers
(peft's default layers for the architecture unless `target_modules` is given, resolved to explicit names outside the
head). A file of ours (for example `adalora.py`) adds only what peft does not have, through `register_extras`.

Nothing here imports peft until a generic method is named: its config class is read then.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import logging
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from ..errors import ConfigError, ModelError
from ..fields import setting, validate_fields
from .lr_centres import LR_CENTRES
from .peft_types import is_peft_type, refusal
from . import registry
from .registry import ADAPTER_EPOCHS, ON_DEMAND, Method, MethodSettings, register_method

log = logging.getLogger(__name__)

# set by us for every method, so not settings: the task, the head, and what peft fills in itself
OURS = ("task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
        "inference_mode", "modules_to_save")
GENERIC_LEARNING_RATE = 5e-4  # LoRA's checked default: a starting point for an adapter, not checked per method
# a value peft requires but gives no default for: ours, said in the setting's help
REQUIRED_DEFAULTS = {"num_virtual_tokens": (20, "peft has no default; 20, as in peft's prompt-tuning examples")}
# the field that sets a method's capacity, searched around its default by `--tune-trials` (first one present)
CAPACITY_FIELDS = ("r", "n_frequency", "block_size", "oft_block_size", "boft_block_size", "num_virtual_tokens",
                   "encoder_hidden_size", "num_vectors")


@dataclass(frozen=True)
class Extras:
    """What a file of ours adds to a peft type: its description, values peft needs that we know (`prepare`: settings
    dict -> settings dict), callbacks for training, a model hook, and its capacity knob where the default rule does
    not fit."""

    description: str | None = None
    prepare: Callable[[dict], dict] | None = None
    training_callbacks: Callable[[Any], list] | None = None
    after_apply: Callable[[Any], Any] | None = None
    capacity: tuple[str, list] | None = None  # (field, choices) the search tries, where the default rule does not fit


EXTRAS: dict[str, Extras] = {}


def register_extras(name: str, extras: Extras) -> None:
    EXTRAS[name] = extras


@dataclass(frozen=True)
class GenericPeftSettings(MethodSettings):
    """Settings of a peft type: `learning_rate` (ours) and the fields of peft's config class (peft's names)."""

    prefix: ClassVar[str] = ""
    peft_class: ClassVar[str] = ""
    generic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        own = [f for f in dataclasses.fields(self) if f.name == "learning_rate"]
        validate_fields(self, {"learning_rate": float}, own, self.key_name)
        try:
            self.peft_config(None, [])
        except (ValueError, TypeError) as e:
            raise ConfigError(f"method.{self.prefix}: peft's {self.peft_class} rejects these settings: "
                              f"{str(e).splitlines()[0]}") from None

    def peft_values(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "learning_rate"}
        extras = EXTRAS.get(self.prefix)
        return extras.prepare(values) if extras and extras.prepare else values

    def peft_config(self, targets: list[str] | None, head: list[str]) -> Any:
        """peft's config object of these settings; `targets` (resolved layer names) replaces target_modules."""
        from peft import TaskType
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

        cls = PEFT_TYPE_TO_CONFIG_MAPPING[self.prefix.upper()]
        values = self.peft_values()
        if targets is not None:
            values["target_modules"] = targets
        names = {f.name for f in dataclasses.fields(cls)}
        if "modules_to_save" in names:
            values["modules_to_save"] = list(head) or None
        return cls(task_type=TaskType.SEQ_CLS, **values)


def _plain_default(f: dataclasses.Field) -> tuple[bool, Any]:
    """(usable, default) of one peft field: enums as their values; a default YAML cannot hold is left out."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return False, None
    if isinstance(value, enum.Enum):
        value = value.value

    def plain(v: Any) -> bool:
        if isinstance(v, (list, tuple)):
            return all(plain(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and plain(x) for k, x in v.items())
        return v is None or isinstance(v, (bool, int, float, str))

    return plain(value), list(value) if isinstance(value, tuple) else value


def default_learning_rate(name: str) -> tuple[float, str]:
    """(rate, where it comes from): the range test's centre, else LoRA's default."""
    if name in LR_CENTRES:
        return LR_CENTRES[name], ("the centre of a short learning-rate range test on the embedded MiniLM "
                                  "(benchmarks/results/lr-range.md): a starting point; tune it (--tune-trials)")
    return GENERIC_LEARNING_RATE, f"LoRA's default, not checked for {name}; tune it (--tune-trials)"


def settings_class(name: str, peft_class: type) -> type[GenericPeftSettings]:
    """A settings dataclass with `learning_rate` and peft_class's fields (peft's defaults and help texts)."""
    rate, why = default_learning_rate(name)
    fields: list[tuple] = [("learning_rate", float, setting(rate, f"Learning rate for {name}: {why}.", min=0,
                                                            exclusive_min=True))]
    for f in dataclasses.fields(peft_class):
        if f.name in OURS or f.name == "learning_rate":
            continue
        usable, default = _plain_default(f)
        if not usable:
            continue
        help_text = f"peft {peft_class.__name__}.{f.name}: {f.metadata.get('help', '')}".strip()
        if default is None and f.name in REQUIRED_DEFAULTS:
            default, why = REQUIRED_DEFAULTS[f.name]
            help_text += f" ({why})"
        fields.append((f.name, Any, setting(default, " ".join(help_text.split()))))
    cls = dataclasses.make_dataclass(f"{peft_class.__name__}Settings", fields, bases=(GenericPeftSettings,),
                                     frozen=True)
    cls.prefix, cls.peft_class = name, peft_class.__name__
    cls.__module__ = __name__
    return cls


def default_targets(model: Any, name: str) -> list[str] | None:
    """peft's default target layers for this architecture (its tuner's mapping), or None."""
    from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING

    tuner = PEFT_TYPE_TO_TUNER_MAPPING.get(name.upper())
    mapping = getattr(tuner, "target_module_mapping", None) or {}
    return mapping.get(getattr(model.config, "model_type", None))


def resolved_targets(model: Any, settings: GenericPeftSettings, head: list[str]) -> list[str] | None:
    """The layers to adapt, as explicit names outside the head: the settings' target_modules, else peft's default for
    the architecture. None for a method without target layers (prompt tuning, LN tuning)."""
    from .targets import resolve_target_modules

    if not hasattr(settings, "target_modules"):
        return None
    given = settings.target_modules
    if isinstance(given, str):  # peft's regex form: peft matches it itself
        return None
    if settings.prefix == "ln_tuning":  # layer norms, which peft matches by name itself (BERT/RoBERTa: LayerNorm)
        return list(given or ["LayerNorm"])
    chosen = given or default_targets(model, settings.prefix)
    if not chosen:
        raise ModelError(f"peft has no default target layers of {settings.prefix} for model type "
                         f"'{getattr(model.config, 'model_type', '?')}': set method.{settings.prefix}.target_modules")
    return resolve_target_modules(model, list(chosen), head, settings.key_name("target_modules"))


def apply_generic(model: Any, settings: GenericPeftSettings, head: list[str]) -> Any:
    from peft import get_peft_model

    targets = resolved_targets(model, settings, head)
    try:
        peft_model = get_peft_model(model, settings.peft_config(targets, head))
    except (ValueError, TypeError, RuntimeError, AttributeError, NotImplementedError) as e:
        raise ModelError(f"{settings.prefix} cannot be applied to this model: peft says "
                         f"\"{str(e).splitlines()[0] if str(e) else type(e).__name__}\"") from None
    extras = EXTRAS.get(settings.prefix)
    return extras.after_apply(peft_model) if extras and extras.after_apply else peft_model


def check_generic(model: Any, settings: GenericPeftSettings, head: list) -> None:
    """What apply would fail on (a block size that does not divide the layers' width, ...), found before any run:
    the method is applied to a copy of the model."""
    apply_generic(copy.deepcopy(model), settings, list(head))


def search_space(name: str, cls: type[GenericPeftSettings]) -> dict:
    """The default Optuna space, the same shape for every peft type: the learning rate log-uniform over one decade
    centred on the range test's best rate (two decades around LoRA's default for a type the range test has not
    covered), the capacity knob at half, once and twice its default, and the adapters' epochs."""
    extras = EXTRAS.get(name, Extras())
    rate, _ = default_learning_rate(name)
    half_width = 10 ** 0.5 if name in LR_CENTRES else 10.0
    space = {cls.key_name("learning_rate"): {"type": "float", "low": float(f"{rate / half_width:.3g}"),
                                             "high": float(f"{rate * half_width:.3g}"), "log": True}}
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    if extras.capacity:
        field_name, choices = extras.capacity
        space[cls.key_name(field_name)] = {"type": "categorical", "choices": list(choices)}
    for knob in () if extras.capacity else CAPACITY_FIELDS:
        value = defaults.get(knob)
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            space[cls.key_name(knob)] = {"type": "categorical", "choices": sorted({max(1, value // 2), value,
                                                                                    value * 2})}
            break
    space["num_epochs"] = ADAPTER_EPOCHS
    return space


def register_peft_type(name: str) -> Method | None:
    """The method `name` (a peft type not registered yet) built and registered; None when `name` is no peft type.
    A type that cannot train an encoder classifier is refused here, by name, with its reason."""
    if name in registry.REGISTRY:
        return registry.REGISTRY[name]
    if not is_peft_type(name):
        return None
    reason = refusal(name)
    if reason:
        raise ConfigError(f"method '{name}' cannot train an encoder classifier: {reason}")
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    peft_class = PEFT_TYPE_TO_CONFIG_MAPPING[name.upper()]
    cls = settings_class(name, peft_class)
    extras = EXTRAS.get(name, Extras())
    method = Method(name, extras.description or f"peft {peft_class.__name__} (peft's settings) + the full head",
                    apply_generic, cls, search_space(name, cls), check=check_generic, generic=True,
                    training_callbacks=extras.training_callbacks)
    log.debug("registered peft type %s through %s", name, peft_class.__name__)
    return register_method(method)


def register_named(names: Any) -> None:
    """Register every peft type among `names` (method names a config gives) that is not registered yet."""
    for name in names if isinstance(names, (list, tuple, set)) else [names]:
        if isinstance(name, str) and name not in registry.REGISTRY:
            register_peft_type(name)


def register_for_keys(keys: Any) -> None:
    """Register the peft types that flat keys (`oft_r`, `method_overrides`, ...) of a config name."""
    from .peft_types import peft_type_names

    types = sorted(peft_type_names(), key=len, reverse=True)  # the longest name first: `lora_` is not `lora_ga_`
    for key in keys:
        if not isinstance(key, str) or "_" not in key:
            continue
        for t in types:
            if key.startswith(t + "_"):
                if t not in registry.REGISTRY:
                    register_peft_type(t)
                break


ON_DEMAND.append(register_peft_type)
