"""The data section: where the data comes from and how it is drawn (read by data building), and its checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError
from ..fields import setting
from .sections import Section

PRESET_DEFAULTS = {"samples_per_class": 15000, "test_samples_per_class": 2000,
                   "sources": ["imdb", "sst5", "tweeteval"]}
FILE_KEYS = ("train_file", "validation_file", "test_file")
HUB_DATASET_KEYS = ("dataset_config", "train_split", "validation_split", "test_split")
OWN_DATA_KEYS = ("text_column", "label_column", "group_column", "cluster_column", "label_names")


@dataclass(frozen=True)
class DataConfig(Section):
    """Where the data comes from and how it is drawn: read by data building."""

    section = "data"
    data_source: str = setting(
        "hub", "Where data comes from. The sentiment preset (IMDB + SST-5 + TweetEval mapped to negative/neutral/"
        "positive): 'hub', 'local' (data_dir) or 'embedded' (the packaged sample). Your own data: 'files' "
        "(train_file, test_file, ...) or 'hub' with dataset_name (any hub dataset).",
        choices=("hub", "local", "embedded", "files"))
    data_dir: Optional[str] = setting(None, "Directory in the layout <name>/<split>.jsonl.gz (data_source=local).")
    sources: Optional[list[str]] = setting(
        None, "Datasets the sentiment preset mixes (default: imdb, sst5, tweeteval); your own data leaves it unset.",
        choices=("imdb", "sst5", "tweeteval"), nonempty=True,
    )
    train_file: Optional[str] = setting(None, "Your own data (data_source: files): the training file, CSV, TSV, "
                                        "JSON Lines or Parquet (.csv, .tsv, .jsonl/.json, .parquet; .gz for the text "
                                        "formats).")
    validation_file: Optional[str] = setting(None, "Your own data: the validation file (default: a stratified "
                                        "val_fraction of train_file).")
    test_file: Optional[str] = setting(None, "Your own data: the test file both methods are scored on (required).")
    dataset_name: Optional[str] = setting(None, "Any Hugging Face dataset (data_source: hub), read with "
                                     "datasets.load_dataset: a hub id or a local dataset folder.")
    dataset_config: Optional[str] = setting(None, "The dataset's configuration (subset) name, if it has several.")
    train_split: str = setting("train", "dataset_name: the split to train on.", nonempty=True)
    validation_split: Optional[str] = setting(None, "dataset_name: the validation split (default: a stratified "
                                         "val_fraction of the training split).")
    test_split: str = setting("test", "dataset_name: the split both methods are scored on.", nonempty=True)
    text_column: str = setting("text", "Your own data: the column holding the text.", nonempty=True)
    label_column: str = setting("label", "Your own data: the column holding the label (strings, or integers).",
                           nonempty=True)
    group_column: Optional[str] = setting(None, "Your own data: an optional column (domain, product, language, ...) "
                                     "reported like the preset's sources: per-group metrics and balance.")
    cluster_column: Optional[str] = setting(
        None, "Your own data: an optional column of cluster ids (film, user, product, conversation): test examples of "
        "one cluster are resampled together by the test-set bootstrap, whose shared noise is otherwise "
        "underestimated (docs/statistics.md, Assumptions). A row without one is its own cluster.")
    label_names: Optional[list[str]] = setting(
        None, "Your own data: class names in id order. With integer labels, label i is named label_names[i]; with "
        "string labels, fixes the order (default: sorted). Every name must be used in training.")
    holdout_sources: Optional[list[str]] = setting(
        None, "Sources (your own data: values of group_column) that training and validation never see, near-duplicate "
        "texts included: the test set keeps them and scores them apart as out-of-domain (`<metric>_out_of_domain`, "
        "beside `<metric>_in_domain`). A leave-one-source-out study: --sweep holdout_sources=imdb,sst5,tweeteval.",
        nonempty=True)
    samples_per_class: Optional[int] = setting(
        None, "Training examples per class (validation is split from these), drawn balanced. Default: 15000 for "
        "the sentiment preset; every example as it is (no cap, class balance reported) for your own data.", min=1)
    test_samples_per_class: Optional[int] = setting(
        None, "Test examples per class, drawn balanced from the test split(s). Default: 2000 for the sentiment "
        "preset; the whole test split for your own data.", min=1)
    val_fraction: float = setting(
        0.1, "Share of the training sample held out for validation.", min=0, max=1, exclusive_min=True,
        exclusive_max=True,
    )
    source_mixing: str = setting(
        "equal",
        "How a class quota is shared by sources: 'equal' (as equal as pools allow) or 'proportional' (to pool size).",
        choices=("equal", "proportional"),
    )
    allow_upsampling: bool = setting(False, "Fill a short class by drawing duplicates (otherwise: warn, use all).")
    clean_text: bool = setting(True, "Source-specific cleaning (IMDB <br />, SST -LRB-, tweet @user/http); the "
                               "sentiment preset only (your own data: whitespace only).")
    augment: bool = setting(False, "Add word-dropout/swap copies of training examples (train split only).")
    augment_fraction: float = setting(0.2, "Share of training examples that get one augmented copy.", min=0, max=1)

    @property
    def uses_own_data(self) -> bool:
        return uses_own_data(self)

    def check(self) -> None:
        _check_data(self)


def _default(key: str) -> Any:
    from ..fields import default_value

    return default_value(DataConfig.__dataclass_fields__[key])


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
        unused += [k for k in ("dataset_name", *HUB_DATASET_KEYS) if getattr(data, k) != _default(k)]
    elif data.dataset_name is None:
        unused += [k for k in HUB_DATASET_KEYS if getattr(data, k) != _default(k)]
    if not own:
        unused += [k for k in OWN_DATA_KEYS if getattr(data, k) != _default(k)]
    if unused:
        needs = "data_source: files" if unused[0] in FILE_KEYS else (
            "data_source: hub with dataset_name" if unused[0] in ("dataset_name", *HUB_DATASET_KEYS)
            else "your own data (data_source: files, or hub with dataset_name)")
        raise ConfigError(f"config key '{unused[0]}': only read with {needs}; data_source is '{data.data_source}'"
                          + ("" if data.data_source != "hub" else " without dataset_name"))
    if own:
        for key in ("sources", "data_dir", "clean_text"):
            if getattr(data, key) != _default(key):
                raise ConfigError(f"config key '{key}': belongs to the sentiment preset; your own data "
                                  f"(data_source: {data.data_source}) does not read it")
        if data.allow_upsampling and data.samples_per_class is None:
            raise ConfigError("config key 'allow_upsampling': only used when samples_per_class is set (your own data "
                              "is otherwise used as it is)")
        which = "validation_file" if data.data_source == "files" else "validation_split"
        if getattr(data, which) and data.val_fraction != _default("val_fraction"):
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
    _check_holdout(data, own)


def _check_holdout(data: Any, own: bool) -> None:
    """Held-out sources the data has (the preset's: checked now; your own data's groups: when it is read)."""
    held = data.holdout_sources
    if not held:
        return
    if own:
        if not data.group_column:
            raise ConfigError("config key 'holdout_sources': names values of group_column, which is not set; set "
                              "group_column to the column that says which group (domain) each row belongs to")
        return
    unknown = [s for s in held if s not in data.sources]
    if unknown:
        raise ConfigError(f"config key 'holdout_sources': {', '.join(map(repr, unknown))} is not one of sources "
                          f"({', '.join(data.sources)}); a held-out source is loaded for the test set, so it must "
                          "be one of them")
    if set(held) >= set(data.sources):
        raise ConfigError(f"config key 'holdout_sources': every source ({', '.join(data.sources)}) is held out, so "
                          "nothing is left to train on; hold out fewer")
