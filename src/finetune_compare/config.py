"""The experiment configuration: one frozen, validated dataclass.

Keys are flat so that the seed's YAML files and `Config(use_lora=True, num_epochs=5)`
keep working. Every field carries its constraints in `metadata`; `validate()` checks
types and ranges and raises `ConfigError` with the key, the value and what is allowed.
YAML is read with `yaml.safe_load` only. Unknown keys are errors that name the closest
valid key, so a typo can never be silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from .errors import ConfigError
from .redaction import redact

from .registry import get_spec, method_names

log = logging.getLogger(__name__)


def _f(default, help: str, **constraints):
    """A dataclass field with a help text and validation constraints."""
    if isinstance(default, (list, dict)):
        import copy

        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata={"help": help, **constraints})
    return field(default=default, metadata={"help": help, **constraints})


@dataclass(frozen=True)
class Config:
    # --- model -----------------------------------------------------------------
    model_name: str = _f(
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "Hugging Face hub id, local model directory, or 'embedded-minilm' (offline MiniLM-L6).",
    )
    max_length: int = _f(128, "Max tokens per text; capped at the model's position limit.", min=8)
    trust_remote_code: bool = _f(False, "Allow model code from the hub. Off unless you trust the repo.")

    # --- methods ---------------------------------------------------------------
    use_lora: bool = _f(True, "Seed key: a single run (`--mode train`) uses LoRA when true, full FT when false.")
    methods: list[str] = _f(["full", "lora"], "Methods that `--mode compare` runs (see the method registry).",
                            choices=method_names, nonempty=True)
    learning_rate: float = _f(2e-5, "Learning rate for full fine-tuning (and head-only).", min=0, exclusive_min=True)
    lora_learning_rate: float = _f(
        5e-4, "Learning rate for LoRA/DoRA: adapters need ~10x full FT's rate.", min=0, exclusive_min=True
    )
    head_learning_rate: Optional[float] = _f(
        None, "Learning rate of the classification head under every method (default: learning_rate, full FT's), "
        "so head and method effects are not confounded.", min=0, exclusive_min=True,
    )
    lora_r: int = _f(8, "LoRA rank.", min=1)
    lora_alpha: int = _f(16, "LoRA scaling numerator (scale = alpha / r).", min=1)
    lora_dropout: float = _f(0.1, "Dropout on the LoRA branch.", min=0, max=1, exclusive_max=True)
    lora_target_modules: list[str] = _f(
        ["query", "value"], "Module name suffixes that get adapters (never the classification head).", nonempty=True
    )
    lora_bias: str = _f("none", "Which biases LoRA trains.", choices=("none", "all", "lora_only"))
    ia3_learning_rate: float = _f(3e-3, "Learning rate for IA3's scaling vectors.", min=0, exclusive_min=True)
    ia3_target_modules: list[str] = _f(
        ["key", "value", "output.dense"], "IA3: layer name suffixes whose activations get a learned scale (peft's "
        "default for BERT/RoBERTa).", nonempty=True,
    )
    ia3_feedforward_modules: list[str] = _f(
        ["output.dense"], "IA3: which of ia3_target_modules are feed-forward layers (scaled at their input).",
    )
    vera_learning_rate: float = _f(4e-3, "Learning rate for VeRA's scaling vectors.", min=0, exclusive_min=True)
    vera_r: int = _f(1024, "VeRA rank of the shared random projections (the paper's RoBERTa-base value; only "
                     "vectors are trained).", min=1)
    vera_target_modules: list[str] = _f(["query", "value"], "VeRA: layer name suffixes that get adapters.",
                                        nonempty=True)

    # --- data ------------------------------------------------------------------
    data_source: str = _f(
        "hub", "Where data comes from. The sentiment preset (IMDB + SST-5 + TweetEval mapped to negative/neutral/"
        "positive): 'hub', 'local' (data_dir) or 'embedded' (the packaged sample). Your own data: 'files' "
        "(train_file, test_file, ...) or 'hub' with dataset_name (any hub dataset).",
        choices=("hub", "local", "embedded", "files"))
    data_dir: Optional[str] = _f(None, "Directory in the layout <name>/<split>.jsonl.gz (data_source=local).")
    sources: Optional[list[str]] = _f(
        None, "Datasets the sentiment preset mixes (default: imdb, sst5, tweeteval); your own data leaves it unset.",
        choices=("imdb", "sst5", "tweeteval"), nonempty=True,
    )
    train_file: Optional[str] = _f(None, "Your own data (data_source: files): the training file, CSV, TSV, JSON Lines "
                                   "or Parquet (.csv, .tsv, .jsonl/.json, .parquet; .gz for the text formats).")
    validation_file: Optional[str] = _f(None, "Your own data: the validation file (default: a stratified "
                                        "val_fraction of train_file).")
    test_file: Optional[str] = _f(None, "Your own data: the test file both methods are scored on (required).")
    dataset_name: Optional[str] = _f(None, "Any Hugging Face dataset (data_source: hub), read with "
                                     "datasets.load_dataset: a hub id or a local dataset folder.")
    dataset_config: Optional[str] = _f(None, "The dataset's configuration (subset) name, if it has several.")
    train_split: str = _f("train", "dataset_name: the split to train on.", nonempty=True)
    validation_split: Optional[str] = _f(None, "dataset_name: the validation split (default: a stratified "
                                         "val_fraction of the training split).")
    test_split: str = _f("test", "dataset_name: the split both methods are scored on.", nonempty=True)
    text_column: str = _f("text", "Your own data: the column holding the text.", nonempty=True)
    label_column: str = _f("label", "Your own data: the column holding the label (strings, or integers).",
                           nonempty=True)
    group_column: Optional[str] = _f(None, "Your own data: an optional column (domain, product, language, ...) "
                                     "reported like the preset's sources: per-group metrics and balance.")
    label_names: Optional[list[str]] = _f(
        None, "Your own data: class names in id order. With integer labels, label i is named label_names[i]; with "
        "string labels, fixes the order (default: sorted). Every name must be used in training.")
    samples_per_class: Optional[int] = _f(
        None, "Training examples per class (validation is split from these), drawn balanced. Default: 15000 for "
        "the sentiment preset; every example as it is (no cap, class balance reported) for your own data.", min=1)
    test_samples_per_class: Optional[int] = _f(
        None, "Test examples per class, drawn balanced from the test split(s). Default: 2000 for the sentiment "
        "preset; the whole test split for your own data.", min=1)
    val_fraction: float = _f(
        0.1, "Share of the training sample held out for validation.", min=0, max=1, exclusive_min=True,
        exclusive_max=True,
    )
    source_mixing: str = _f(
        "equal",
        "How a class quota is shared by sources: 'equal' (as equal as pools allow) or 'proportional' (to pool size).",
        choices=("equal", "proportional"),
    )
    allow_upsampling: bool = _f(False, "Fill a short class by drawing duplicates (otherwise: warn, use all).")
    clean_text: bool = _f(True, "Source-specific cleaning (IMDB <br />, SST -LRB-, tweet @user/http); the sentiment "
                          "preset only (your own data: whitespace only).")
    augment: bool = _f(False, "Add word-dropout/swap copies of training examples (train split only).")
    augment_fraction: float = _f(0.2, "Share of training examples that get one augmented copy.", min=0, max=1)

    # --- training --------------------------------------------------------------
    num_epochs: int = _f(3, "Maximum training epochs.", min=1, max=1000)
    batch_size: int = _f(16, "Per-device training batch size.", min=1)
    eval_batch_size: int = _f(64, "Per-device evaluation batch size.", min=1)
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.", min=1)
    warmup_ratio: float = _f(0.06, "Share of steps with linear warmup (then linear decay).", min=0, max=1,
                             exclusive_max=True)
    weight_decay: float = _f(0.01, "AdamW weight decay.", min=0)
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).", min=0)
    patience: int = _f(2, "Early stopping: evaluations without validation macro-F1 gain (0 disables).", min=0)
    evaluations_per_epoch: int = _f(2, "Validation evaluations per epoch (points on the learning curve).", min=1)
    batch_grouping: str = _f(
        "length",
        "'length': batches of similar length (less padding), in random order; 'random': plain shuffling.",
        choices=("length", "random"),
    )
    mixed_precision: str = _f(
        "auto", "'auto' = bf16 where the CPU/GPU supports it, fp16 on older GPUs.",
        choices=("auto", "no", "bf16", "fp16"), bool_alias={False: "no"},
    )
    gradient_checkpointing: bool = _f(False, "Trade compute for activation memory.")
    base_weights_dtype: str = _f(
        "auto", "Storage of the frozen base under parameter-efficient methods (LoRA, DoRA, head): 'auto' = bf16 where "
        "training runs in bf16, else fp32. Adapters, head and optimizer state stay fp32; full fine-tuning always "
        "keeps fp32 master weights. The value used is recorded per run.", choices=("auto", "fp32", "bf16"),
    )
    num_workers: int = _f(0, "DataLoader worker processes.", min=0)
    num_threads: Optional[int] = _f(None, "torch CPU threads (default: torch's choice).", min=1)
    device: str = _f("auto", "Training device: auto, cpu, cuda, or cuda:N for the GPU with index N (applied as "
                     "CUDA_VISIBLE_DEVICES, before CUDA starts; with torchrun, each rank takes its own).",
                     pattern=r"auto|cpu|cuda|cuda:[0-9]+")
    gpu_memory_fraction: Optional[float] = _f(
        None, "Cap this process's CUDA memory (torch.cuda.set_per_process_memory_fraction).", min=0, max=1,
        exclusive_min=True,
    )
    oom_retry: bool = _f(False, "On CUDA out-of-memory, retry with half the batch and double accumulation.")
    save_checkpoints: bool = _f(
        False, "Checkpoint at every evaluation so an interrupted run resumes where it stopped (deleted when done)."
    )

    # --- experiment ------------------------------------------------------------
    num_runs: int = _f(3, "Seeds per method in a comparison.", min=1, max=10000)
    resample_data_per_run: bool = _f(
        True, "Pair k draws its training sample and validation split with seed + k (both methods of the pair share "
        "it; the test set stays fixed), so the intervals cover data variance too.",
    )
    primary_metric: str = _f("macro_f1", "The one test metric that decides the verdict; the others get Holm-adjusted "
                             "p-values.", choices=("macro_f1", "accuracy", "macro_precision", "macro_recall"))
    equivalence_margin: Optional[float] = _f(
        0.01, "Declared margin on the primary metric: 'equivalent' only when a TOST test shows the difference within "
        "+-margin (null: never claim equivalence).", min=0, exclusive_min=True,
    )
    seed: int = _f(42, "Data seed and first run seed (run k uses seed + k).", min=0)
    output_dir: str = _f("outputs", "Where results go.", nonempty=True)
    save_model: bool = _f(False, "Save the trained model (LoRA: adapter + head only).")
    save_merged: bool = _f(False, "LoRA: also save a merged full model.")
    save_dir: Optional[str] = _f(None, "Where models are saved (default: inside each run folder).")
    evaluate_base_model: bool = _f(True, "Evaluate the untrained checkpoint when its head already fits.")
    method_overrides: dict = _f(
        {}, "Per-method settings, e.g. {lora: {lora_r: 16, batch_size: 32}}; written by --mode optimize as tuned.yaml."
    )
    sweep: dict = _f(
        {}, "Grid for `finetune-compare sweep`: one or two keys, each with a list of values, e.g. {samples_per_class: "
        "[100, 400, 1600]}; every point is a full paired comparison. Only the sweep command reads it.",
    )

    # --- tracking (YAML may also nest these under `tracking:`, e.g. tracking: {mlflow_uri: ...}) ---
    tracking_mlflow: bool = _f(True, "Log to MLflow (default store: SQLite inside output_dir).")
    tracking_mlflow_uri: Optional[str] = _f(
        None, "MLflow tracking URI (a server: http://host:5000); default $MLFLOW_TRACKING_URI or output_dir/mlflow.db."
    )
    tracking_mlflow_experiment: str = _f("finetune-compare", "MLflow experiment name.")
    tracking_mlflow_register_model: bool = _f(
        False, "Register the best method's saved model in the MLflow model registry (needs save_model)."
    )
    tracking_wandb: bool = _f(True, "Log to Weights & Biases (offline files under output_dir unless online).")
    tracking_wandb_mode: str = _f(
        "auto", "'auto' = online when WANDB_API_KEY is set, else offline (sync later with `wandb sync`).",
        choices=("auto", "offline", "online"),
    )
    tracking_wandb_project: str = _f("finetune-compare", "W&B project.")
    tracking_wandb_entity: Optional[str] = _f(None, "W&B entity (team or user).")

    # --- hyperparameter search (--mode optimize) -----------------------------------------
    hpo_trials: int = _f(20, "Optuna trials per method (--trials overrides).", min=0, max=100000)
    hpo_metric: str = _f("macro_f1", "Validation metric to maximise.",
                         choices=("macro_f1", "accuracy", "macro_recall", "macro_precision"))
    hpo_sampler: str = _f("tpe", "Optuna sampler (seeded with `seed`).", choices=("tpe", "random"))
    hpo_pruner: str = _f("median", "Stop bad trials early at validation evaluations.",
                         choices=("median", "hyperband", "none"))
    hpo_storage: Optional[str] = _f(
        None, "Optuna storage URL (postgresql://, mysql://, sqlite:///) or journal:PATH; default: SQLite in output_dir."
    )
    hpo_study_name: str = _f("finetune-compare", "Study name prefix; the method is appended.")
    search_space: dict = _f({}, "Per-method search spaces merged over the defaults (see docs/internals.md, search).")

    def __post_init__(self) -> None:
        validate(self)

    # Sections: each stage receives only its own (data building gets `config.data`, the trainer
    # `config.training`, ...), so a stage cannot quietly depend on a key outside its concern.
    @functools.cached_property
    def model(self) -> "ModelConfig":
        return ModelConfig.of(self)

    @functools.cached_property
    def method(self) -> "MethodConfig":
        return MethodConfig.of(self)

    @functools.cached_property
    def data(self) -> "DataConfig":
        return DataConfig.of(self)

    @functools.cached_property
    def training(self) -> "TrainingConfig":
        return TrainingConfig.of(self)

    @functools.cached_property
    def experiment(self) -> "ExperimentConfig":
        return ExperimentConfig.of(self)

    @functools.cached_property
    def tracking(self) -> "TrackingConfig":
        return TrackingConfig.of(self)

    @functools.cached_property
    def search(self) -> "SearchConfig":
        return SearchConfig.of(self)

    # Convenience accessors -------------------------------------------------------
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
        """The config a run of `method` uses: `method_overrides[method]` applied."""
        overrides = self.method_overrides.get(method)
        return self.replace(**overrides) if overrides else self

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "Config":
        return from_dict({**self.to_dict(), **changes})


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}
_HINTS = typing.get_type_hints(Config)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, (list, tuple)) else value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            dict: "a mapping"}.get(tp, str(tp))


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming key, value and expected type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(key, value, inner)
    bad = ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
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
        return [_coerce(key, v, inner) for v in value]
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


def _check_constraints(key: str, value: Any, meta: dict) -> None:
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


def _validate_fields(obj: Any, names: typing.Iterable[str]) -> None:
    """Coerce each named field of `obj` to its declared type and check its constraints (frozen-safe)."""
    for name in names:
        f = FIELDS[name]
        value = getattr(obj, name)
        if isinstance(value, bool) and value in f.metadata.get("bool_alias", {}):
            value = f.metadata["bool_alias"][value]  # YAML 1.1 reads a bare `no` as false
        value = _coerce(name, value, _HINTS[name])
        _check_constraints(name, value, f.metadata)
        object.__setattr__(obj, name, value)


PRESET_DEFAULTS = {"samples_per_class": 15000, "test_samples_per_class": 2000,
                   "sources": ["imdb", "sst5", "tweeteval"]}
FILE_KEYS = ("train_file", "validation_file", "test_file")
HUB_DATASET_KEYS = ("dataset_config", "train_split", "validation_split", "test_split")
OWN_DATA_KEYS = ("text_column", "label_column", "group_column", "label_names")


def uses_own_data(data: Any) -> bool:
    """Your own data (files or a named hub dataset), not the sentiment preset."""
    return data.data_source == "files" or (data.data_source == "hub" and data.dataset_name is not None)


def _check_data(data: Any) -> None:
    if data.data_source == "local" and not data.data_dir:
        raise ConfigError("config key 'data_dir': required when data_source is 'local' (e.g. ../shared/data)")
    own = uses_own_data(data)
    # a key that the chosen source would not read is an error, never silently ignored
    unused = []
    if data.data_source != "files":
        unused += [k for k in FILE_KEYS if getattr(data, k) is not None]
    if data.data_source != "hub":
        unused += [k for k in ("dataset_name", *HUB_DATASET_KEYS) if getattr(data, k) != default_of(k)]
    elif data.dataset_name is None:
        unused += [k for k in HUB_DATASET_KEYS if getattr(data, k) != default_of(k)]
    if not own:
        unused += [k for k in OWN_DATA_KEYS if getattr(data, k) != default_of(k)]
    if unused:
        needs = "data_source: files" if unused[0] in FILE_KEYS else (
            "data_source: hub with dataset_name" if unused[0] in ("dataset_name", *HUB_DATASET_KEYS)
            else "your own data (data_source: files, or hub with dataset_name)")
        raise ConfigError(f"config key '{unused[0]}': only read with {needs}; data_source is '{data.data_source}'"
                          + ("" if data.data_source != "hub" else " without dataset_name"))
    if own:
        for key in ("sources", "data_dir", "clean_text"):
            if getattr(data, key) != default_of(key):
                raise ConfigError(f"config key '{key}': belongs to the sentiment preset; your own data "
                                  f"(data_source: {data.data_source}) does not read it")
        if data.allow_upsampling and data.samples_per_class is None:
            raise ConfigError("config key 'allow_upsampling': only used when samples_per_class is set (your own data "
                              "is otherwise used as it is)")
        which = "validation_file" if data.data_source == "files" else "validation_split"
        if getattr(data, which) and data.val_fraction != default_of("val_fraction"):
            raise ConfigError(f"config key 'val_fraction': not used when {which} is given (validation is that "
                              "data, not a share of training)")
        if data.data_source == "files":
            for key in ("train_file", "test_file"):
                if not getattr(data, key):
                    raise ConfigError(f"config key '{key}': required when data_source is 'files'"
                                      + (" (both methods are scored on it)" if key == "test_file" else ""))
        if data.label_names is not None and len(data.label_names) < 2:
            raise ConfigError("config key 'label_names': at least 2 classes, got "
                              f"{len(data.label_names)}: {data.label_names}")
    else:
        for key, value in PRESET_DEFAULTS.items():  # the preset draws balanced classes by default
            if getattr(data, key) is None:
                object.__setattr__(data, key, value)


def _check_experiment(experiment: Any) -> None:
    if experiment.save_merged and not experiment.save_model:
        raise ConfigError("config key 'save_merged': needs save_model: true")


# Checks between keys of one section: a section validates itself, so a stage handed only its section can trust it.
_SECTION_CHECKS = {"data": _check_data, "experiment": _check_experiment}


def validate(cfg: Config) -> None:
    """Coerce every field to its declared type and check its constraints (in place, frozen-safe)."""
    _validate_fields(cfg, FIELDS)
    for check in _SECTION_CHECKS.values():
        check(cfg)
    for method, overrides in cfg.method_overrides.items():
        if method not in method_names():
            raise ConfigError(f"config key 'method_overrides': unknown method {method!r}; allowed: "
                              f"{', '.join(method_names())}")
        if not isinstance(overrides, dict):
            raise ConfigError(f"config key 'method_overrides.{method}': expected a mapping of config keys to values")
        for key in overrides:
            if key not in FIELDS:
                raise unknown_key_error(str(key), f"method_overrides.{method}")
            if key not in METHOD_OVERRIDE_KEYS:
                # the data, the model and the folder are built once per comparison, so a per-method value
                # here would be recorded in that method's results without having been used
                raise ConfigError(
                    f"config key 'method_overrides.{method}.{key}': '{key}' cannot differ between methods (data, "
                    "model, output and experiment keys are shared by every method of a comparison, so the runs "
                    f"stay paired); allowed per method: {', '.join(sorted(METHOD_OVERRIDE_KEYS))}")
        # the values too, now: a bad one must fail before any folder is claimed or any run trains
        try:
            from_dict({**cfg.to_dict(), **overrides, "method_overrides": {}, "sweep": {}})  # the grid: check_sweep
        except ConfigError as exc:
            raise ConfigError(f"method_overrides.{method}: {exc}") from None
    check_sweep(cfg)
    last_seed = cfg.seed + cfg.num_runs - 1
    if last_seed >= 2 ** 32:
        raise ConfigError(f"config key 'seed': seed + num_runs - 1 = {last_seed} must be < 2^32 (numpy's seed range)")


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


def check_sweep(cfg: Config) -> None:
    """Every key may vary per point and every value is one its key accepts: checked before any training."""
    if len(cfg.sweep) > MAX_SWEEP_KEYS:
        raise ConfigError(f"config key 'sweep': at most {MAX_SWEEP_KEYS} keys (a grid over one or two), got "
                          f"{len(cfg.sweep)}: {', '.join(map(str, cfg.sweep))}")
    normalised: dict[str, list] = {}
    for key, values in cfg.sweep.items():
        if key not in FIELDS:
            raise unknown_key_error(str(key), "sweep")
        reason = sweep_fixed_reason(key)
        if reason:
            raise ConfigError(f"sweep key '{key}' cannot vary per point: {reason}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep key '{key}': expected a non-empty list of values, got {values!r}")
        seen = []
        for value in values:
            try:
                point = from_dict({**cfg.to_dict(), "sweep": {}, key: value})
            except ConfigError as exc:
                raise ConfigError(f"sweep key '{key}', value {value!r}: {exc}") from None
            if getattr(point, key) in seen:
                raise ConfigError(f"sweep key '{key}': value {value!r} is listed twice")
            seen.append(getattr(point, key))
        normalised[key] = seen  # as the key reads them ('1e-4' -> 0.0001): folder names and records agree
    object.__setattr__(cfg, "sweep", normalised)


def unknown_key_error(key: str, where: str = "config") -> ConfigError:
    close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(FIELDS))}"
    return ConfigError(f"unknown {where} key '{key}'{hint}")


# Keys that may differ per method (`method_overrides`): how the method adapts the model and how it is trained.
METHOD_OVERRIDE_KEYS = frozenset({
    "learning_rate", "lora_learning_rate", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_bias",
    "num_epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "warmup_ratio", "weight_decay",
    "max_grad_norm", "patience", "evaluations_per_epoch", "batch_grouping", "mixed_precision",
    "gradient_checkpointing", "base_weights_dtype", "ia3_learning_rate", "ia3_target_modules",
    "ia3_feedforward_modules", "vera_learning_rate", "vera_r", "vera_target_modules",
})

# Config by concern: every key belongs to one section, and YAML (or --set section.key=value) may nest keys under
# their section, e.g. `training: {num_epochs: 5}` or `tracking: {wandb: false}`; the seed's flat keys work
# everywhere. Sections start at these keys, in field order. Tracking and search keys drop their prefix when nested.
SECTION_STARTS = {"model_name": "model", "use_lora": "method", "data_source": "data", "num_epochs": "training",
                  "num_runs": "experiment", "tracking_mlflow": "tracking", "hpo_trials": "search"}
SECTION_PREFIX = {"tracking": "tracking_", "search": "hpo_"}


def _sections() -> dict[str, str]:
    out, current = {}, None
    for name in FIELDS:
        current = SECTION_STARTS.get(name, current)
        out[name] = current
    return out


SECTION_OF: dict[str, str] = _sections()
SECTIONS = tuple(SECTION_STARTS.values())


class _Section:
    """A section's keys as their own frozen, validated type (types, ranges and the section's own cross-key checks).

    Fields, defaults, types and constraints are those of `Config` (one definition); build one from a whole config
    with `Section.of(config)` (what `config.data` etc. return) or directly, e.g. `DataConfig(samples_per_class=50)`.
    """

    section: typing.ClassVar[str]

    def __post_init__(self) -> None:
        _validate_fields(self, (f.name for f in dataclasses.fields(self)))
        _SECTION_CHECKS.get(self.section, lambda _: None)(self)

    @classmethod
    def of(cls, cfg: Config):
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _section_type(section: str, doc: str, namespace: dict | None = None) -> type:
    fields = []
    for name in (n for n, s in SECTION_OF.items() if s == section):
        f = FIELDS[name]
        default = ({"default": f.default} if f.default is not dataclasses.MISSING
                   else {"default_factory": f.default_factory})
        fields.append((name, _HINTS[name], field(metadata=f.metadata, **default)))
    cls = dataclasses.make_dataclass(f"{section.title()}Config", fields, bases=(_Section,), frozen=True,
                                     namespace={"section": section, "__doc__": doc, **(namespace or {})})
    cls.__module__ = __name__
    return cls


def _learning_rate_for(self, method: str) -> float:
    """Each method gets its own learning rate (the registry names its key): one shared rate would bias
    the comparison."""
    return getattr(self, get_spec(method).learning_rate_key)


def _head_lr(self) -> float:
    """The classification head's rate under every method: `head_learning_rate`, else full FT's rate."""
    return self.head_learning_rate or self.learning_rate


ModelConfig = _section_type("model", "Which checkpoint, and how texts are cut: read by the model provider.")
MethodConfig = _section_type(
    "method", "How each method adapts the model, and its learning rate: read by the methods and the trainer.",
    {"learning_rate_for": _learning_rate_for, "head_lr": property(_head_lr)})
DataConfig = _section_type("data", "Where the data comes from and how it is drawn: read by data building.",
                           {"uses_own_data": property(uses_own_data)})
TrainingConfig = _section_type("training", "How a run trains (epochs, batches, precision, device): read by the "
                                           "trainer.")
ExperimentConfig = _section_type("experiment", "Seeds, runs, the verdict's metric and margin, outputs and saving.")
TrackingConfig = _section_type("tracking", "MLflow and Weights & Biases: read by the trackers.")
SearchConfig = _section_type("search", "Optuna's search: read by --mode optimize.")
SECTION_TYPES = {t.section: t for t in (ModelConfig, MethodConfig, DataConfig, TrainingConfig, ExperimentConfig,
                                        TrackingConfig, SearchConfig)}


def _nested_key(section: str, sub: str, where: str) -> str:
    """The flat field of `section.sub`, or a ConfigError naming the section the key belongs to."""
    for candidate in (SECTION_PREFIX.get(section, "") + sub, sub):
        if SECTION_OF.get(candidate) == section:
            return candidate
    if sub in SECTION_OF:
        raise ConfigError(f"{where}: '{section}.{sub}': '{sub}' belongs to section '{SECTION_OF[sub]}', "
                          f"not '{section}'")
    raise unknown_key_error(f"{section}.{sub}", where)


def flatten_sections(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{key}' must be a mapping of its keys, got {type(value).__name__}")
            for sub, v in value.items():
                flat = _nested_key(key, str(sub), where)
                if flat in out or flat in data:
                    raise ConfigError(f"{where}: '{flat}' is given twice (flat and under '{key}:')")
                out[flat] = v
        else:
            out[key] = value
    return out


def _flat_key(key: str, where: str = "--set") -> str:
    section, dot, sub = key.partition(".")
    return _nested_key(section, sub, where) if dot and section in SECTIONS else key


def from_dict(data: dict[str, Any], where: str = "config") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    data = flatten_sections(data, where)
    for key in data:
        if key not in FIELDS:
            raise unknown_key_error(str(key), where)
    try:
        return Config(**data)
    except TypeError as exc:  # pragma: no cover - every key was checked above
        raise ConfigError(f"{where}: {exc}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}': expected a mapping of keys to values, got {type(data).__name__}")
    return data


def _set_value(raw: str) -> Any:
    """A `--set` value, parsed as YAML so lists and numbers work (text that is not YAML stays text)."""
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are parsed as YAML so lists and numbers work."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = _flat_key(key.strip())
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if key not in FIELDS:
            raise unknown_key_error(key, "--set")
        out[key] = _set_value(raw)
    return out


def parse_sweep(items: list[str]) -> dict[str, list]:
    """`--sweep key=v1,v2,v3` (repeatable for a second key); each value is parsed as YAML, like --set."""
    out: dict[str, list] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = _flat_key(key.strip(), "--sweep")
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--sweep expects key=value1,value2,..., got {item!r}")
        if key in out:
            raise ConfigError(f"--sweep: key '{key}' is given twice; list all its values in one --sweep")
        values = []
        for part in raw.split(","):
            if not part.strip():
                raise ConfigError(f"--sweep {item!r}: an empty value between commas")
            try:
                values.append(yaml.safe_load(part))
            except yaml.YAMLError:
                values.append(part.strip())
        out[key] = values
    return out


def _merge_method_overrides(data: dict[str, Any], layer: dict[str, Any], where: str) -> None:
    """`layer`'s method_overrides merged into `data`'s per method and key (a later layer wins key by key)."""
    per_method = layer.get("method_overrides")
    for m, v in per_method.items() if isinstance(per_method, dict) else ():
        if v is not None and not isinstance(v, dict):  # merged below: a scalar here would be a TypeError
            raise ConfigError(f"{where}: config key 'method_overrides.{m}': expected a mapping of config keys to "
                              f"values, got {v!r} ({type(v).__name__})")
    if isinstance(per_method, dict) and isinstance(data.get("method_overrides"), dict):
        merged = {m: dict(v or {}) for m, v in data["method_overrides"].items()}
        for m, v in layer.pop("method_overrides").items():
            merged[m] = {**merged.get(m, {}), **(v or {})}
        data["method_overrides"] = merged


def _nested_overrides(items: list[str]) -> tuple[list[str], dict[str, dict]]:
    """`--set method_overrides.lora.num_epochs=1` entries, as {lora: {num_epochs: 1}}; the other items as given."""
    rest, nested = [], {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if parts[0] != "method_overrides" or len(parts) == 1:
            rest.append(item)
            continue
        if len(parts) != 3 or not sep:
            raise ConfigError(f"--set {item!r}: expected method_overrides.METHOD.KEY=VALUE")
        nested.setdefault(parts[1], {})[parts[2]] = _set_value(raw)
    return rest, nested


def replaced_settings(data: dict[str, Any], given: dict[str, str], override_source: dict[tuple[str, str], str]
                      ) -> list[str]:
    """A value given by --set (or a later config file) that a method's override replaces for that method."""
    out = []
    for method, keys in (data.get("method_overrides") or {}).items():
        for key, value in (keys or {}).items():
            source = given.get(key)
            if source is None or source == override_source.get((method, key)) or value == data.get(key):
                continue
            out.append(f"{key}={data[key]!r} ({source}) does not apply to {method}: method_overrides.{method}.{key}="
                       f"{value!r} ({override_source.get((method, key), 'config')}) replaces it; to change it too: "
                       f"--set method_overrides.{method}.{key}=VALUE")
    return out


def load_config(path: str | Path | list | None = None, overrides: list[str] | None = None, **extra: Any) -> Config:
    """Load YAML file(s) (later files override earlier ones key by key; `method_overrides`
    is merged per method and key, `--set method_overrides.M.K=V` too), apply `--set` overrides and keyword
    overrides, validate. A global value given later that a method's override replaces is warned about."""
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    data: dict[str, Any] = {}
    given: dict[str, str] = {}  # key -> where its value came from
    override_source: dict[tuple[str, str], str] = {}
    for p in paths:
        where = f"config file '{p}'"
        layer = flatten_sections(load_yaml(p), where)
        for key in layer:
            if key not in FIELDS:
                raise unknown_key_error(str(key), where)
        per_method = layer.get("method_overrides")
        if isinstance(per_method, dict):
            override_source.update({(m, k): where for m, v in per_method.items() if isinstance(v, dict) for k in v})
        _merge_method_overrides(data, layer, where)
        given.update({k: where for k in layer if k != "method_overrides"})
        data.update(layer)
    where = f"config file '{paths[-1]}'" if paths else "config"
    rest, nested = _nested_overrides(overrides or [])
    flat = parse_overrides(rest)
    given.update({k: f"--set {k}" for k in flat if k != "method_overrides"})
    data.update(flat)
    if nested:
        override_source.update({(m, k): f"--set method_overrides.{m}.{k}" for m, v in nested.items() for k in v})
        _merge_method_overrides(data, {"method_overrides": nested}, "--set")
        data.setdefault("method_overrides", nested)
    given.update({k: "command line" for k, v in extra.items() if v is not None})
    data.update({k: v for k, v in extra.items() if v is not None})
    config = from_dict(data, where)
    for line in replaced_settings(config.to_dict(), given, override_source):
        log.warning(line)
    return config


# --------------------------------------------------------------------------------------
# Writing (with secrets removed)
# --------------------------------------------------------------------------------------

def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(redact(cfg.to_dict()), sort_keys=False, allow_unicode=True)


def default_of(key: str) -> Any:
    """A key's default value (a fresh copy for list and mapping defaults)."""
    f = FIELDS[key]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def describe_keys() -> list[tuple[str, str, str, Any, str]]:
    """(key, section, type, default, help) for every key: used by docs/configuration.md and `config --list`."""
    return [(name, SECTION_OF[name], _type_name(_HINTS[name]), default_of(name), f.metadata.get("help", ""))
            for name, f in FIELDS.items()]
