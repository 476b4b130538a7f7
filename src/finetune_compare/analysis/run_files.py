"""Reading the results folder for reports: a damaged file is one clear error naming it, never a traceback."""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..evaluation.run_record import RunRecord
from ..utils import io
from ..metric_names import DOMAIN_PARTS, OVERALL_METRICS

FIX = "delete that run's folder and rerun the same command to retrain it, then rebuild the report"


def _corrupt(path: Path, why: str) -> UserError:
    return UserError(f"'{path}' is corrupt ({why}); {FIX}")


def read_json(path: str | Path) -> Any:
    try:
        return io.read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None


def read_searches(output_dir: str | Path) -> dict[str, tuple[dict, dict | None]]:
    """{method: (its search's summary, its widened search's or None)} of a folder's optimize/, in the folder's order:
    the one reading of the searches for the report's tables, the tuning record and the fairness checks."""
    from ..layout import Layout

    layout = Layout(output_dir)
    out = {}
    for path in layout.study_summaries():
        first = read_json(path)
        widened = layout.study_summary(first["method"], "extended")
        out[first["method"]] = (first, read_json(widened) if widened.is_file() else None)
    return out


def read_jsonl(path: str | Path) -> list:
    try:
        return io.read_jsonl(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None


RUN_SECTIONS = ("test", "params", "timing", "memory")
SCORES = OVERALL_METRICS


def _is_score(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1


def read_metrics(path: str | Path) -> dict:
    """A run's metrics.json, checked for the fields the report reads."""
    m = read_json(path)
    if not isinstance(m, dict):
        raise _corrupt(Path(path), f"expected an object, got {type(m).__name__}")
    missing = [k for k in ("method", *RUN_SECTIONS) if not isinstance(m.get(k), (str, dict))]
    if missing:
        raise _corrupt(Path(path), f"missing or wrong type: {', '.join(missing)}")
    test = m["test"]
    bad = [k for k in SCORES
           if not isinstance(test.get(k), numbers.Real) or isinstance(test.get(k), bool)]
    if bad or not isinstance(test.get("confusion_matrix"), list) or not isinstance(test.get("per_source"), dict):
        raise _corrupt(Path(path), f"test metrics incomplete: {', '.join(bad) or 'confusion_matrix/per_source'}")
    scores = {k: test[k] for k in SCORES}
    scores.update({f"per_source.{g}.{k}": v.get(k) for g, v in test["per_source"].items() if isinstance(v, dict)
                   for k in ("macro_f1", "accuracy")})
    scores.update({f"per_class.{c}.f1": v.get("f1") for c, v in (test.get("per_class") or {}).items()
                   if isinstance(v, dict)})
    domain = test.get("domain") if isinstance(test.get("domain"), dict) else {}
    scores.update({f"domain.{p}.{k}": domain[p].get(k) for p in DOMAIN_PARTS if isinstance(domain.get(p), dict)
                   for k in SCORES})
    damaged = [k for k, v in scores.items() if not _is_score(v)]
    if damaged:  # NaN or inf (or a score outside [0, 1]) is a damaged run, not a result
        raise _corrupt(Path(path), f"test score {damaged[0]} is {scores[damaged[0]]!r}, not a number in [0, 1]")
    if m["method"] != "base" and not isinstance(m.get("seed"), int):
        raise _corrupt(Path(path), "seed is not an integer")
    return m


def read_record(path: str | Path) -> RunRecord:
    """A run's metrics.json, checked, as its typed record: sections nested as the run wrote them."""
    return RunRecord.from_json(read_metrics(path))


def scores(runs: dict[int, RunRecord], key) -> dict[int, float]:
    """{seed: score} of one metric key (metric_names.MetricKey) over one method's runs; a run without that part of
    the test set (a source it was not scored on) is left out."""
    return {s: v for s, r in runs.items() if (v := key.value(r.test)) is not None}


def read_history(path: str | Path) -> dict:
    h = read_json(path)
    if not isinstance(h, dict) or not isinstance(h.get("train"), list) or not isinstance(h.get("eval"), list):
        raise _corrupt(Path(path), "expected an object with 'train' and 'eval' lists")
    return h


def read_predictions(path: str | Path) -> dict[str, tuple[int, int, str, str | None]]:
    """A run's predictions.jsonl as {id: (label, predicted, source, cluster)}; cluster is None where the data declared
    none (cluster_column). One comparison reads each run's file several times (every pair of methods it is in, the
    learning checks): a file read once is kept while its size and modification time are unchanged. Read-only."""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PREDICTIONS:
        if len(_PREDICTIONS) >= _KEPT:
            _PREDICTIONS.pop(next(iter(_PREDICTIONS)))
        _PREDICTIONS[key] = _parse_predictions(path)
    return _PREDICTIONS[key]


_PREDICTIONS: dict[tuple, dict] = {}
_KEPT = 64  # runs: a comparison of 6 methods x 10 seeds


def _parse_predictions(path: str | Path) -> dict[str, tuple[int, int, str, str | None]]:
    try:
        return {str(r["id"]): (int(r["label"]), int(r["predicted"]), str(r.get("source", "")),
                               None if r.get("cluster") is None else str(r["cluster"])) for r in read_jsonl(path)}
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(Path(path), f"{type(exc).__name__}: {str(exc)[:120]}") from None
