"""Your own data: files (CSV, TSV, JSON Lines, Parquet) or any hub dataset, read with the `datasets` loaders.

Returns each split as rows of (text, label name, group) plus the label names in id order, decided from the
data: string labels (sorted, or the order of `label_names`), integer labels (named by `label_names`, else by
their value), or a hub dataset's ClassLabel names. Everything a user can get wrong fails here with the file,
the column and what is allowed: a missing column (with the columns found), a non-text text column, a missing
label, a single class, a test label the training data never uses.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..utils.io import file_digest
from .loading import load_hub_split

log = logging.getLogger(__name__)

# suffix -> (datasets builder, its options)
# Only a truly empty CSV/TSV cell is missing: pandas' default missing-value words (NA, null, None, nan, N/A, ...)
# would drop real texts and turn a class named "None" into a missing label.
ONLY_EMPTY_IS_MISSING = {"keep_default_na": False, "na_values": [""]}
FORMATS = {
    ".csv": ("csv", ONLY_EMPTY_IS_MISSING), ".tsv": ("csv", {"delimiter": "\t", **ONLY_EMPTY_IS_MISSING}),
    ".jsonl": ("json", {}), ".json": ("json", {}), ".parquet": ("parquet", {}),
}
TEXT_TYPES = {"string", "large_string"}
INT_TYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


@dataclass(frozen=True)
class LabelledRow:
    text: str | None  # None: missing (dropped with a warning, like an empty text)
    label: str  # the class name
    group: str
    row: int  # 0-based position in its file or split
    cluster: str | None = None  # cluster_column's value (None: the row is a cluster of its own)


@dataclass
class OwnData:
    labels: tuple[str, ...]  # class names in id order
    splits: dict[str, list[LabelledRow]]  # train, test and (when given) validation
    where: dict[str, str]  # split -> the file or hub split it came from, for messages


def _format_of(path: Path) -> tuple[str, dict]:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in FORMATS or (path.suffix.lower() == ".gz" and suffix == ".parquet"):
        raise DataError(f"'{path}': unknown file type '{''.join(path.suffixes) or '(none)'}'; allowed: .csv, .tsv, "
                        ".jsonl, .json, .parquet (the text formats may be .gz)")
    return FORMATS[suffix]


def check_file(path_text: str, key: str) -> Path:
    path = Path(path_text)
    if not path.is_file():
        raise DataError(f"config key '{key}': file '{path}' does not exist or is not a file")
    return path


def read_table(path_text: str, key: str):
    """One file as a `datasets.Dataset`, or a DataError naming the config key and the file."""
    import datasets

    builder, options = _format_of(Path(path_text))  # an unknown file type is named first, as before
    path = check_file(path_text, key)
    bars_were_off = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a local file reads in a moment; bars would only clutter the log
    quiet = logging.getLogger("datasets")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the loaders log the failure too: the user gets one message, ours
    try:
        # keyed by content: datasets' own cache key for a local file is its path and mtime, so a file replaced by
        # another with the same mtime would be read from the old file's cache (the marker checks this digest too)
        return datasets.load_dataset(builder, name=f"sha256-{file_digest(path)}", data_files={"data": str(path)},
                                     split="data", **options)
    except Exception as exc:  # pyarrow, pandas and json raise their own types for a damaged file
        if isinstance(exc, ValueError) and "corresponds to no data" in str(exc):  # datasets' words for no rows
            raise DataError(f"config key '{key}': '{path}' has no rows (a header only?)") from None
        cause = exc.__cause__ or exc
        detail = str(cause).strip().splitlines()[0][:240] if str(cause).strip() else type(cause).__name__
        kind = "JSON Lines" if builder == "json" else builder.upper()
        raise DataError(f"config key '{key}': cannot read '{path}' as {kind} ({type(cause).__name__}: {detail})"
                        ) from None
    finally:
        quiet.setLevel(level)
        if not bars_were_off:  # hub downloads later in the process keep their progress bars
            datasets.enable_progress_bars()


def _dtype(feature) -> str:
    return getattr(feature, "dtype", type(feature).__name__)


def _check_columns(ds, cfg, where: str, test: bool = False) -> None:
    found = list(ds.column_names)
    # the cluster column is read from the test split only (it is what the test-set bootstrap resamples)
    for key in ("text_column", "label_column", "group_column", *(("cluster_column",) if test else ())):
        column = getattr(cfg, key)
        if column is not None and column not in found:
            raise DataError(f"{where}: no column '{column}' ({key}); the columns found are: {', '.join(found)}")
    text_type = _dtype(ds.features[cfg.text_column])
    if text_type not in TEXT_TYPES:
        raise DataError(f"{where}: text column '{cfg.text_column}' holds {text_type} values, not text; set "
                        "text_column to the column with the texts")
    label_feature = ds.features[cfg.label_column]
    if _dtype(label_feature) in ("float16", "float32", "float64"):
        values = ds[cfg.label_column]
        missing = [i for i, v in enumerate(values) if v is None or v != v]
        if missing and all(float(v).is_integer() for v in values if v is not None and v == v):
            # integers with empty cells: the reader made the column float; the problem is the missing labels
            raise DataError(f"{where}: {len(missing)} row(s) have no label in column '{cfg.label_column}' (first: "
                            f"row {missing[0] + 1}); label every row or drop those rows")
    if not hasattr(label_feature, "names") and _dtype(label_feature) not in TEXT_TYPES | INT_TYPES:
        raise DataError(f"{where}: label column '{cfg.label_column}' holds {_dtype(label_feature)} values; labels "
                        "must be strings or integers")


def _names_from_ids(ids: set[int], cfg, feature_names: list[str] | None, where: str) -> list[str]:
    names = list(cfg.label_names) if cfg.label_names is not None else feature_names
    if names is None:
        return [str(i) for i in sorted(ids)]
    bad = sorted(i for i in ids if not 0 <= i < len(names))
    if bad:
        raise DataError(f"{where}: integer label {bad[0]} has no name: label_names has {len(names)} "
                        f"({', '.join(names)}), so labels must be 0..{len(names) - 1}")
    return names


def _label_values(ds, cfg, where: str) -> list:
    """The label column, read once; a row without a label is an error."""
    values = ds[cfg.label_column]
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise DataError(f"{where}: {len(missing)} row(s) have no label in column '{cfg.label_column}' (first: row "
                        f"{missing[0] + 1}); label every row or drop those rows")
    return values


def _text_labels(ds, cfg) -> bool:
    """String labels (else integers, a ClassLabel among them): decided by the column's type, not a row's value."""
    return _dtype(ds.features[cfg.label_column]) in TEXT_TYPES


def _group_values(ds, cfg) -> list[str]:
    if cfg.group_column is None:
        return ["data"] * len(ds)
    return ["(none)" if v is None else str(v) for v in ds[cfg.group_column]]


def _cluster_values(ds, cfg) -> list[str | None]:
    if cfg.cluster_column is None or cfg.cluster_column not in ds.column_names:  # (required in the test split)
        return [None] * len(ds)
    return [None if v is None or v != v or str(v).strip() == "" else str(v) for v in ds[cfg.cluster_column]]


def load_own_data(cfg) -> OwnData:
    """Read train / validation / test of your own data (`cfg` is the data section) and decide the label names."""
    if cfg.data_source == "files":
        sources = {"train": ("train_file", cfg.train_file), "validation": ("validation_file", cfg.validation_file),
                   "test": ("test_file", cfg.test_file)}
        tables = {split: read_table(path, key) for split, (key, path) in sources.items() if path}
        where = {split: f"{key} '{path}'" for split, (key, path) in sources.items() if path}
    else:
        splits = {"train": cfg.train_split, "validation": cfg.validation_split, "test": cfg.test_split}
        tables = {split: load_hub_split(cfg.dataset_name, cfg.dataset_config, name)
                  for split, name in splits.items() if name}
        where = {split: f"dataset '{cfg.dataset_name}' split '{name}'" for split, name in splits.items() if name}
    for split, ds in tables.items():
        if len(ds) == 0:
            raise DataError(f"{where[split]}: has no rows")
        _check_columns(ds, cfg, where[split], test=split == "test")
    values = {split: _label_values(ds, cfg, where[split]) for split, ds in tables.items()}
    text_labels = _text_labels(tables["train"], cfg)
    names: list[str] | None = None  # integer labels: their names, decided from the training split
    if not text_labels:
        feature_names = getattr(tables["train"].features[cfg.label_column], "names", None)
        names = _names_from_ids(set(values["train"]), cfg, feature_names, where["train"])
    rows = {}
    for split, ds in tables.items():
        if _text_labels(ds, cfg) != text_labels:
            raise DataError(f"{where[split]}: labels are {'integers' if text_labels else 'text'} but the training "
                            f"labels are {'text' if text_labels else 'integers'}; use one kind of label in every split")
        if text_labels:
            labels = [v.strip() for v in values[split]]
        else:
            if split != "train":  # (train was checked when the names were decided)
                _names_from_ids(set(values[split]), cfg, feature_names, where[split])
            labels = [names[v] for v in values[split]]
        rows[split] = [LabelledRow(t, lab, g, i, c) for i, (t, lab, g, c) in
                       enumerate(zip(ds[cfg.text_column], labels, _group_values(ds, cfg), _cluster_values(ds, cfg)))]
    label_names = _decide_labels(rows, cfg, names, where)
    return OwnData(tuple(label_names), rows, where)


def _decide_labels(rows: dict[str, list[LabelledRow]], cfg, names: list[str] | None, where: dict) -> list[str]:
    train_counts = Counter(r.label for r in rows["train"])
    if names is None:
        if cfg.label_names is not None:
            unknown = sorted(set(train_counts) - set(cfg.label_names))
            if unknown:
                raise DataError(f"{where['train']}: label '{unknown[0]}' is not in label_names "
                                f"({', '.join(cfg.label_names)})")
            names = list(cfg.label_names)
        else:
            names = sorted(train_counts)
    if len(train_counts) < 2:
        only = next(iter(train_counts), "(none)")
        raise DataError(f"{where['train']}: label column '{cfg.label_column}' has a single class ('{only}'); "
                        "a classifier needs at least 2")
    unused = [n for n in names if not train_counts[n]]
    if unused:
        raise DataError(f"{where['train']}: class '{unused[0]}' has no training examples; every class in "
                        f"label_names must be in the training data ({len(train_counts)} classes are)")
    for split in ("validation", "test"):
        if split not in rows:
            continue
        unseen = Counter(r.label for r in rows[split] if r.label not in train_counts)
        if unseen:
            label, n = unseen.most_common(1)[0]
            raise DataError(f"{where[split]}: label '{label}' ({n} rows) never occurs in the training data, so no "
                            f"model can learn it; the training classes are: {', '.join(names)}")
    return names
