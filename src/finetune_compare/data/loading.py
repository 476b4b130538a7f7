"""Read one split of one source from the hub, a local directory or the embedded sample.

Every backend returns the same thing: a list of `RawRow(text, native_label)` in the
source's native label scheme, validated against its label names.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..utils.hub_access import hub_unreachable_hint, prepare_hub_access
from .sources import SOURCES, SourceSpec

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"


@dataclass(frozen=True, slots=True)
class RawRow:
    text: str
    native_label: int


def expected_layout(sources: list[str]) -> str:
    parts = []
    for name in sources:
        spec = SOURCES[name]
        parts.append(f"{spec.local_dir}/{{{','.join(spec.splits)}}}.jsonl.gz")
    return "<data_dir>/" + ", ".join(parts)


def _check_label(spec: SourceSpec, label, label_text, where: str) -> int:
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(spec.native_labels):
        raise DataError(f"{where}: label {label!r} is not in {spec.name}'s scheme {spec.scheme()}")
    if label_text is not None and label_text != spec.native_labels[label]:
        raise DataError(
            f"{where}: label {label} is named {label_text!r}, but {spec.name}'s scheme says "
            f"{spec.native_labels[label]!r} ({spec.scheme()}); refusing to guess the mapping"
        )
    return label


def _split_path(root: Path, spec: SourceSpec, split: str) -> Path:
    base = root / spec.local_dir
    for candidate in (base / f"{split}.jsonl.gz", base / f"{split}.jsonl"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"missing file {base / (split + '.jsonl.gz')} for source '{spec.name}' split '{split}'; "
        f"expected layout: {expected_layout([spec.name])} with lines {{\"text\": ..., \"label\": ...}}"
    )


def read_jsonl_split(root: Path, spec: SourceSpec, split: str) -> list[RawRow]:
    path = _split_path(root, spec, split)
    rows: list[RawRow] = []
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as fh:  # -sig: a byte-order mark is accepted
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: malformed JSON line ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
                    raise DataError(f"{where}: expected an object with keys 'text' and 'label'")
                if not isinstance(obj["text"], str):
                    raise DataError(f"{where}: 'text' must be a string, got {type(obj['text']).__name__}")
                label = _check_label(spec, obj["label"], obj.get("label_text"), where)
                rows.append(RawRow(obj["text"], label))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason}); save the file as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from None
    if not rows:
        raise DataError(f"{path}: split '{split}' of source '{spec.name}' has no rows")
    return rows


def check_data_dir(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(
            f"data_dir '{root}' does not exist or is not a directory; expected layout: "
            f"{expected_layout(list(SOURCES))}"
        )
    return root


def read_local(data_dir: str | Path, spec: SourceSpec, split: str) -> list[RawRow]:
    return read_jsonl_split(check_data_dir(data_dir), spec, split)


def read_embedded(spec: SourceSpec, split: str) -> list[RawRow]:
    return read_jsonl_split(EMBEDDED_DIR, spec, split)


def load_hub_split(name: str, config: str | None, split: str):
    """One split of a dataset with `datasets.load_dataset` (a hub id, using the local cache when offline, or a local
    dataset folder), or one DataError naming it; the preset's sources and your own hub datasets both load here."""
    import datasets  # a second of import time: only when the hub source is used

    local = Path(name).exists()
    if not local:
        prepare_hub_access()  # an unreachable hub: offline at once, not ~27 s of retries
    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many types for network/cache failures
        raise DataError(
            f"cannot load {name}" + (f" ({config})" if config else "") + f" split '{split}'"
            + ("" if local else " from the Hugging Face hub")
            + f": {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            + ("" if local else f". {hub_unreachable_hint('data')}")
        ) from None


def read_hub(spec: SourceSpec, split: str) -> list[RawRow]:
    """Load from the Hugging Face hub with `datasets` (uses the local cache when offline)."""
    ds = load_hub_split(spec.hub_id, spec.hub_config, split)
    names = None
    feature = ds.features.get("label")
    if feature is not None and hasattr(feature, "names"):
        names = list(feature.names)
        if names != list(spec.native_labels):
            raise DataError(
                f"{spec.hub_id}: label names {names} differ from the expected scheme {spec.scheme()}"
            )
    has_text = "label_text" in ds.column_names
    rows = []
    for i, item in enumerate(ds):
        where = f"{spec.hub_id}[{split}][{i}]"
        label = _check_label(spec, item["label"], item["label_text"] if has_text else None, where)
        rows.append(RawRow(item["text"], label))
    if not rows:
        raise DataError(f"{spec.hub_id}: split '{split}' has no rows")
    return rows


def load_split(backend: str, spec: SourceSpec, split: str, data_dir: str | None = None) -> list[RawRow]:
    if backend == "local":
        return read_local(data_dir, spec, split)
    if backend == "embedded":
        return read_embedded(spec, split)
    if backend == "hub":
        return read_hub(spec, split)
    raise DataError(f"unknown data_source {backend!r}; allowed: hub, local, embedded")
