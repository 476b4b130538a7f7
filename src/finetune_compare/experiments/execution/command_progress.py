"""Progress over a whole command: "run k of N" and an ETA for everything left, one line per run started and
finished (on a terminal or piped to a file alike). The per-step bar and per-evaluation lines of one run are
training/progress.py's.

The ETA is each method's mean time per trained run so far times its runs left (a method not trained yet borrows
the mean of those that were), so a slower method's runs are not priced at a faster one's; with runs side by side
(the Ray executor) it is divided by the number that run at once, and every line also counts the runs running,
failed and queued.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ...evaluation.run_record import RunRecord
from ...metric_names import recorded_key
from ...training.progress import format_seconds

log = logging.getLogger(__name__)


def score_text(config, record: RunRecord) -> str:
    """What a finished run's line shows: its test score on the primary metric."""
    metric = config.experiment.primary_metric
    # an in-domain, out-of-domain or per-source metric is nested in the test section: read it by its flat name
    key = recorded_key(record.test, metric)
    value = key.value(record.test) if key else None
    return f"test {metric} {value:.4f}" if value is not None else f"test macro_f1 {record.test['macro_f1']:.4f}"


@dataclass
class CommandProgress:
    planned: dict[str, int]  # method -> runs this command will go through (finished ones included)
    label: str = ""  # e.g. "sweep point 2/3: " before every line
    started: float = field(default_factory=time.perf_counter)
    done: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # trained runs only (a skipped one costs nothing)
    slots: int = 1  # runs executing side by side
    failed: dict[str, int] = field(default_factory=dict)  # runs that failed on every attempt (they cost no more time)
    _running: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.planned.values())

    @property
    def finished(self) -> int:
        return sum(self.done.values())

    def eta(self) -> float | None:
        means = {m: sum(v) / len(v) for m, v in self.seconds.items() if v}
        if not means:
            return None
        fallback = sum(means.values()) / len(means)
        work = sum((self.planned[m] - self.done.get(m, 0) - self.failed.get(m, 0)) * means.get(m, fallback)
                   for m in self.planned)
        return work / max(1, min(self.slots, self.total - self.finished - sum(self.failed.values())))

    def _left(self) -> str:
        eta = self.eta()
        return f"about {format_seconds(eta)} left" if eta is not None else "ETA after the first trained run"

    def _state(self) -> str:
        if self.slots == 1 and not self.failed:
            return ""
        running, failed = len(self._running), sum(self.failed.values())
        return (f"; {self.finished} done, {running} running, {failed} failed, "
                f"{self.total - self.finished - failed - running} queued")

    def start(self, method: str, seed: int) -> None:
        self._running[(method, seed)] = time.perf_counter()
        elapsed = format_seconds(time.perf_counter() - self.started)
        if self.slots > 1:  # side by side, runs start out of order: no "run k of N" until one ends
            log.info("%sstarted: %s seed %d (%s elapsed, %s%s)", self.label, method, seed, elapsed, self._left(),
                     self._state())
            return
        log.info("%srun %d of %d: %s seed %d (%s elapsed, %s%s)", self.label, self.finished + 1, self.total, method,
                 seed, elapsed, self._left(), self._state())

    def finish(self, method: str, seed: int, trained: bool, score: str = "") -> None:
        started = self._running.pop((method, seed), time.perf_counter())
        self.done[method] = self.done.get(method, 0) + 1
        if trained:
            self.seconds.setdefault(method, []).append(time.perf_counter() - started)
        log.info("%srun %d of %d done: %s seed %d%s%s (%s elapsed, %s%s)", self.label, self.finished, self.total,
                 method, seed, f", {score}" if score else "", "" if trained else " (already complete, kept)",
                 format_seconds(time.perf_counter() - self.started), self._left(), self._state())

    def fail(self, method: str, seed: int, error: str) -> None:
        self._running.pop((method, seed), None)
        self.failed[method] = self.failed.get(method, 0) + 1
        log.error("%s%s seed %d failed on every attempt: %s (the other runs go on; rerun the command to retry it)%s",
                  self.label, method, seed, error, self._state())
