"""Reading the results folder for reports: a damaged file is one clear error naming it, never a traceback."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..labels import CLASS_NAMES
from ..utils import io

FIX = "delete that run's folder and rerun the same command to retrain it, then rebuild the report"


def _corrupt(path: Path, why: str) -> UserError:
    return UserError(f"'{path}' is corrupt ({why}); {FIX}")


def read_json(path: str | Path) -> Any:
    try:
        return io.read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None


def read_jsonl(path: str | Path) -> list:
    try:
        return io.read_jsonl(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None


RUN_SECTIONS = ("test", "params", "timing", "memory")


def run_labels(metrics: dict) -> list[str]:
    """A run's class names in id order (runs recorded before labels were: the sentiment preset's)."""
    return list(metrics.get("labels") or CLASS_NAMES)


def read_metrics(path: str | Path) -> dict:
    """A run's metrics.json, checked for the fields the report reads."""
    m = read_json(path)
    if not isinstance(m, dict):
        raise _corrupt(Path(path), f"expected an object, got {type(m).__name__}")
    missing = [k for k in ("method", *RUN_SECTIONS) if not isinstance(m.get(k), (str, dict))]
    if missing:
        raise _corrupt(Path(path), f"missing or wrong type: {', '.join(missing)}")
    test = m["test"]
    bad = [k for k in ("macro_f1", "accuracy", "macro_precision", "macro_recall")
           if not isinstance(test.get(k), numbers.Real) or isinstance(test.get(k), bool)]
    if bad or not isinstance(test.get("confusion_matrix"), list) or not isinstance(test.get("per_source"), dict):
        raise _corrupt(Path(path), f"test metrics incomplete: {', '.join(bad) or 'confusion_matrix/per_source'}")
    if m["method"] != "base" and not isinstance(m.get("seed"), int):
        raise _corrupt(Path(path), "seed is not an integer")
    return m


def read_history(path: str | Path) -> dict:
    h = read_json(path)
    if not isinstance(h, dict) or not isinstance(h.get("train"), list) or not isinstance(h.get("eval"), list):
        raise _corrupt(Path(path), "expected an object with 'train' and 'eval' lists")
    return h


def read_predictions(path: str | Path) -> dict[str, tuple[int, int, str]]:
    """A run's predictions.jsonl as {id: (label, predicted, source)}."""
    try:
        return {str(r["id"]): (int(r["label"]), int(r["predicted"]), str(r.get("source", ""))) for r in read_jsonl(path)}
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None
