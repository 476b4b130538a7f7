"""The method registry: one entry per fine-tuning method, in the spirit of peft's `register_peft_method`.

A method is one module of this package (or of your own code) that declares
- its settings: a `MethodSettings` dataclass (defaults, ranges, one-line docs), read in a config as
  `method: {lora: {r: 16}}` or by the flat alias `lora_r` (prefix + field: the seed's keys);
- `apply(model, settings, head) -> model`: how it makes the model trainable (the head is trained by every method);
- which settings name its target layers and its rank (checked against the model before any run trains);
- its Optuna search space (flat config keys) and whether it trains every base weight;
and registers itself with one `register_method(Method(...))` call. The config, the CLI, the search, training,
accounting and saving all read this one table. Nothing here imports torch: the config reads the registry, and a
method's `apply` imports torch or peft only when a model is built.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ..errors import ConfigError, ModelError
from ..fields import ValidatedSettings


@dataclass(frozen=True)
class MethodSettings(ValidatedSettings):
    """A method's own settings. `prefix` names them in a config: `method.<prefix>.<field>`, flat `<prefix>_<field>`.
    A field named `learning_rate` is the method's learning rate (without one, the method uses `learning_rate`)."""

    prefix: ClassVar[str]
    # earlier names of renamed fields, still read nested (`method: {lora: {alpha: 16}}` is lora_alpha)
    renamed: ClassVar[dict[str, str]] = {}

    @classmethod
    def key_name(cls, name: str) -> str:
        """The flat key: `<prefix>_<field>`, or the field itself when peft's name already starts with the prefix
        (LoRA's `lora_alpha`, OFT's `oft_block_size`): the seed's flat keys are peft's names."""
        return name if name.startswith(cls.prefix + "_") else f"{cls.prefix}_{name}"

    @classmethod
    def flat_keys(cls) -> dict[str, str]:
        """{flat alias: field name}, in declaration order."""
        return {cls.key_name(f.name): f.name for f in dataclasses.fields(cls)}

    @classmethod
    def hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)


ADAPTER_EPOCHS = {"type": "int", "low": 3, "high": 15}  # few trained weights learn slower: longer budgets

ApplyFunction = Callable[[Any, "MethodSettings | None", list], Any]


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    apply: ApplyFunction  # (model, this method's settings or None, head module names) -> trainable model
    settings: type[MethodSettings] | None = None
    search_space: dict = field(default_factory=dict)  # Optuna's defaults for this method (flat config keys)
    targets_field: str | None = None  # settings field of layer-name suffixes resolved against the model
    rank_field: str | None = None  # settings field of a low-rank update's rank, checked against the layers' width
    trains_base: bool = False  # every base weight trains (full FT): fp32 master weights, no frozen base
    # (model, settings, resolved target layer names) -> None, or a ModelError: what apply would fail on, found early;
    # without targets_field: (model, settings, head module names)
    check: Callable[[Any, Any, list], None] | None = None
    generic: bool = False  # built from peft's own config class when a config names it (methods/generic.py)
    training_callbacks: Callable[[Any], list] | None = None  # (trainable model) -> TrainerCallbacks it needs
    variant_of: str | None = None  # a second name for `variant_of` whose settings a config fixes (method_variants)

    @property
    def adapts_layers(self) -> bool:
        """Its layers are chosen by name (or it has a check of its own), so the model must be loaded to check the
        config before training."""
        return self.targets_field is not None or self.check is not None

    @property
    def rank_key(self) -> str | None:
        return self.settings.key_name(self.rank_field) if self.rank_field else None

    @property
    def learning_rate_key(self) -> str:
        """The config key that sets this method's learning rate."""
        has_own = self.settings is not None and "learning_rate" in {f.name for f in dataclasses.fields(self.settings)}
        return self.settings.key_name("learning_rate") if has_own else "learning_rate"

    def make_trainable(self, model: Any, method_config: Any, head: list[str]) -> Any:
        """`apply` with this method's settings taken from the config's method section."""
        return self.apply(model, method_config.settings_of(self.name), head)


REGISTRY: dict[str, Method] = {}
VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]*")
ON_DEMAND: list[Callable[[str], Any]] = []  # (name) -> registers it if it can: a peft type by name (generic.py)


def register_method(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method '{method.name}' is already registered")
    if not callable(method.apply):
        raise ValueError(f"method '{method.name}': apply must be a function (model, settings, head) -> model")
    for owner in REGISTRY.values():  # two methods may share one settings class (lora and dora), never one prefix
        if method.settings and owner.settings and owner.settings is not method.settings and \
                owner.settings.prefix == method.settings.prefix:
            raise ValueError(f"method '{method.name}': settings prefix '{method.settings.prefix}' is "
                             f"{owner.name}'s")
    for key in (method.targets_field, method.rank_field):
        if key is not None and (method.settings is None or key not in method.settings.flat_keys().values()):
            raise ValueError(f"method '{method.name}': '{key}' is not a field of its settings")
    REGISTRY[method.name] = method
    return method


def register_variant(name: str, base: str) -> Method:
    """`name` as a method of its own that trains like `base` (its settings, search space and checks); the settings
    that make it a variant are the config's (`method_variants`, applied by `Config.for_method`). Registered again
    under another base when a later config of this process says so: the registry holds no settings values."""
    existing = REGISTRY.get(name)
    if existing is not None and existing.variant_of is None:
        raise ConfigError(f"config key 'method_variants': {name!r} is already a method; give the variant a name "
                          f"of its own (e.g. {base}_{name}_2)")
    if existing is not None and existing.variant_of == base:
        return existing
    from .peft_types import is_peft_type

    if is_peft_type(name):
        raise ConfigError(f"config key 'method_variants': {name!r} is a peft method type's name; give the variant a "
                          f"name of its own (e.g. {base}_variant)")
    if not VARIANT_NAME.fullmatch(name):
        raise ConfigError(f"config key 'method_variants': {name!r} is not a usable method name; use lower-case "
                          "letters, digits and underscores, starting with a letter (it names folders and columns)")
    parent = get_method(base)
    if parent.variant_of is not None:
        raise ConfigError(f"config key 'method_variants.{name}.base': {base!r} is itself a variant (of "
                          f"{parent.variant_of!r}); base a variant on a method: {parent.variant_of}")
    REGISTRY.pop(name, None)
    return register_method(dataclasses.replace(parent, name=name, variant_of=base,
                                               description=f"{parent.description} (variant '{name}' of {base})"))


def method_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_method(name: str) -> Method:
    """The registered method `name`; a peft type not registered yet (`oft`, `lokr`, ...) is registered now."""
    for register in ON_DEMAND:
        if name not in REGISTRY:
            register(name)
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown method '{name}'; allowed: {', '.join(REGISTRY)}, or any peft method type "
                         "(peft.PeftType) by its lower-case name, e.g. oft, lokr, hra") from None


def settings_classes(generic: bool = True) -> dict[str, type[MethodSettings]]:
    """{prefix: settings class} of every registered method, in registration order (shared classes once); without
    the peft types registered by name when `generic` is False (the reference listing)."""
    out: dict[str, type[MethodSettings]] = {}
    for method in REGISTRY.values():
        if method.settings is not None and (generic or not method.generic):
            out.setdefault(method.settings.prefix, method.settings)
    return out


def methods_using(prefix: str) -> list[str]:
    return [m.name for m in REGISTRY.values() if m.settings is not None and m.settings.prefix == prefix]


def per_registered_settings(build: Callable[[], Any]) -> Callable[[], Any]:
    """`build()`, cached until the registered methods' settings change: a method registered later (or a test that
    swaps the registry) gets a fresh value, every other call the cached one."""
    cache: dict[tuple, Any] = {}

    @functools.wraps(build)
    def cached() -> Any:
        stamp = tuple((prefix, id(cls)) for prefix, cls in settings_classes().items())
        if stamp not in cache:
            cache.clear()
            cache[stamp] = build()
        return cache[stamp]

    return cached
