"""Tracker bookkeeping, once: a run, a comparison and a study each open a record and close it
FINISHED, FAILED or KILLED (Ctrl-C and SIGTERM are KILLED), whatever happens in between."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass
class Outcome:
    """What the body reports for a FINISHED record."""
    metrics: dict = field(default_factory=dict)
    artifacts: list = field(default_factory=list)


def status_of(exc: BaseException) -> str:
    return "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"  # Terminated is a KeyboardInterrupt


@contextmanager
def tracked(start: Callable[[], None], end: Callable[..., None]) -> Iterator[Outcome]:
    """`start()`, then the body; `end("FINISHED", metrics, artifacts)` after it, or `end(status)` if it raised."""
    start()
    outcome = Outcome()
    try:
        yield outcome
    except BaseException as exc:
        end(status_of(exc))
        raise
    end("FINISHED", outcome.metrics, outcome.artifacts)
