"""Test-set evidence from the runs' predictions: the test-level bootstrap and McNemar's test of two arms of paired
runs, over the whole test set or over the part of it a score is about (one source, the held-out sources).

The verdict uses it for its primary metric, and the "What each method gives up" figures for theirs: a score on a
part of the test set has its own, larger, test-sampling noise, and that is resampled from the same examples the
score was computed on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..layout import PREDICTIONS, Layout
from ..metric_names import MetricKey
from .run_files import read_predictions
from .statistics import TEST_LEVEL_METRICS, bootstrap_test_set

log = logging.getLogger(__name__)


def _predictions(run_dir: Path) -> dict[str, tuple[int, int, str, str | None]] | None:
    path = run_dir / PREDICTIONS
    return read_predictions(path) if path.is_file() else None


def in_part(key: MetricKey, source: str, held_out) -> bool:
    """Whether a test example of `source` counts towards the score `key` names."""
    if key.group == "per_source":
        return source == key.part
    if key.group == "domain":
        return (source in held_out) == (key.part == "out_of_domain")
    return True


def test_set_evidence(output_dir: Path, a: str, b: str, seeds: list[int], metric: str | MetricKey, seed: int,
                      held_out=()) -> dict | None:
    """Test-level bootstrap and McNemar from the runs' predictions; None when they are missing or misaligned."""
    layout = Layout(output_dir)
    return paired_runs_evidence({a: {s: layout.run_dir(a, s) for s in seeds},
                                 b: {s: layout.run_dir(b, s) for s in seeds}}, metric, seed, held_out)


def paired_runs_evidence(runs: dict[str, dict[int, Path]], metric: str | MetricKey, seed: int, held_out=()
                         ) -> dict | None:
    """`test_set_evidence` for two arms of paired runs given as {name: {seed: run folder}} (first arm minus second).
    `metric`: an overall metric's name, or the key of a score on part of the test set (`held_out`: the sources
    out-of-domain scores are over)."""
    key = metric if isinstance(metric, MetricKey) else MetricKey(metric)
    (a, runs_a), (b, runs_b) = runs.items()
    seeds = list(runs_a)
    if key.metric not in TEST_LEVEL_METRICS or key.group == "per_class" or not seeds:
        return None
    rows = {(m, s): _predictions(runs[m][s]) for m in (a, b) for s in seeds}
    if any(r is None for r in rows.values()):
        return None
    ids = sorted(rows[(a, seeds[0])])
    if any(sorted(r) != ids for r in rows.values()):
        log.warning("test sets differ between runs of %s and %s: no test-level statistics", a, b)
        return None
    first = rows[(a, seeds[0])]
    ids = [i for i in ids if in_part(key, first[i][2], held_out)]
    if not ids:
        return None
    y = np.array([first[i][0] for i in ids])
    strata = [f"{first[i][2]}|{first[i][0]}" for i in ids]  # stratified by source x label
    preds = {m: {s: np.array([rows[(m, s)][i][1] for i in ids]) for s in seeds} for m in (a, b)}
    if all(first[i][3] is None for i in ids):
        return bootstrap_test_set(y, preds[a], preds[b], strata, key.metric, seed=seed)
    # declared clusters (cluster_column): whole clusters resampled within each source; a row without one is its own
    clusters = [first[i][3] if first[i][3] is not None else f"row:{i}" for i in ids]
    return bootstrap_test_set(y, preds[a], preds[b], strata, key.metric, seed=seed, clusters=clusters,
                              cluster_strata=[first[i][2] for i in ids])
