"""Progress over a whole command: "run k of N" and an ETA for everything left, one line per run started and
finished (on a terminal or piped to a file alike). The per-step bar and per-evaluation lines of one run are
training/progress.py's.

The ETA is each method's mean time per trained run so far times its runs left (a method not trained yet borrows
the mean of those that were), so a slower method's runs are not priced at a faster one's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..training.progress import format_seconds

log = logging.getLogger(__name__)


@dataclass
class CommandProgress:
    planned: dict[str, int]  # method -> runs this command will go through (finished ones included)
    label: str = ""  # e.g. "sweep point 2/3: " before every line
    started: float = field(default_factory=time.perf_counter)
    done: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # trained runs only (a skipped one costs nothing)
    _current: tuple[str, float] | None = None

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
        return sum((self.planned[m] - self.done.get(m, 0)) * means.get(m, fallback) for m in self.planned)

    def _left(self) -> str:
        eta = self.eta()
        return f"about {format_seconds(eta)} left" if eta is not None else "ETA after the first trained run"

    def start(self, method: str, seed: int) -> None:
        self._current = (method, time.perf_counter())
        log.info("%srun %d of %d: %s seed %d (%s elapsed, %s)", self.label, self.finished + 1, self.total, method,
                 seed, format_seconds(time.perf_counter() - self.started), self._left())

    def finish(self, method: str, seed: int, trained: bool, score: str = "") -> None:
        started = self._current[1] if self._current else time.perf_counter()
        self.done[method] = self.done.get(method, 0) + 1
        if trained:
            self.seconds.setdefault(method, []).append(time.perf_counter() - started)
        self._current = None
        log.info("%srun %d of %d done: %s seed %d%s%s (%s elapsed, %s)", self.label, self.finished, self.total,
                 method, seed, f", {score}" if score else "", "" if trained else " (already complete, kept)",
                 format_seconds(time.perf_counter() - self.started), self._left())
