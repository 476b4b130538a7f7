"""Ctrl-C, SIGTERM and SIGHUP that stop a run between training steps, never inside a library call.

Raised at an arbitrary point, the interrupt can land inside a tracker's database write or a
checkpoint save and leave them half done. While a Trainer runs, the first signal only sets a
flag; `training.trainer.StopOnSignal` raises at the next step boundary (seconds later). A second signal, or
any signal outside training, raises at once.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)

_pending: type[BaseException] | None = None
_training_depth = 0
_unhandled: type[BaseException] | None = None
_received: type[BaseException] | None = None  # the last signal's exception type, whatever a library re-raises
_note: str | None = None  # what the work under way keeps if a signal stops it now, and what a rerun does


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the current run stops, trackers are closed as killed."""

    signum = signal.SIGTERM


class HungUp(Terminated):
    """SIGHUP (the terminal or SSH session closed): stops like SIGTERM. A long job that should outlive its terminal
    runs under nohup, tmux or a scheduler."""

    signum = signal.SIGHUP


_EXCEPTIONS = {signal.SIGTERM: Terminated, signal.SIGHUP: HungUp}
_STOPPED = {signal.SIGHUP: "hung up (SIGHUP: the terminal closed)", signal.SIGTERM: "terminated (SIGTERM)",
            signal.SIGINT: "interrupted"}


def stop_message(exc: BaseException | type[BaseException]) -> tuple[str, int]:
    """The one line and the exit status (128 + the signal's number, as a shell reports it) of a command that a
    signal stopped: Ctrl-C 130, SIGTERM 143, SIGHUP 129."""
    # a library may turn our exception into a plain KeyboardInterrupt on its way out (Ray's wait does): the signal
    # this process received says what stopped it
    signum = int(getattr(exc, "signum", None) or getattr(_received, "signum", signal.SIGINT))
    stopped = f"{_STOPPED.get(signum, 'interrupted')}; finished runs are kept"
    if _note:
        return f"{stopped}; {_note}; rerun the same command to resume", 128 + signum
    return f"{stopped}: rerun the same command to resume", 128 + signum


def note(text: str | None) -> None:
    """Say what the work under way keeps if a signal stops it now (None: nothing beyond finished work); the stop
    message quotes it, so the user knows what the rerun will redo."""
    global _note
    _note = text


# An interrupt raised inside an import can unwind through C++ code that imports Python from a module's init (torch's
# pybind11 extensions do): there it aborts the whole process (std::terminate, exit -6), seen with Ctrl-C 1.5 s into
# a command. So a signal that lands inside an import is delivered again a moment later, until the import is done.
REDELIVER_SECONDS = 0.05
MAX_REDELIVERIES = 1200  # a minute: an import that takes longer gets the interrupt anyway
_redeliveries = 0
_swallowed = 0  # interrupts redelivered after Python swallowed them (a weakref callback), since the last clear()


def _inside_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _redeliver(signum) -> None:
    import _thread

    _thread.interrupt_main(signum)  # runs _handler again in the main thread, at its next bytecode


def _redeliver_later(signum) -> None:
    timer = threading.Timer(REDELIVER_SECONDS, _redeliver, (signum,))
    timer.daemon = True
    timer.start()


def _handler(signum, frame):
    global _pending, _redeliveries, _received
    exc = _EXCEPTIONS.get(signum, KeyboardInterrupt)
    _received = exc
    if not _training_depth and _redeliveries < MAX_REDELIVERIES and _inside_import(frame):
        _redeliveries += 1
        _redeliver_later(signum)
        return
    _redeliveries = 0
    if _training_depth and _pending is None:
        _pending = exc
        log.warning("stopping after the current training step (signal again to stop at once)")
        return
    _pending = None  # a second signal: stop now, nothing left pending
    global _unhandled
    _unhandled = exc  # Python swallows an exception raised in a weakref callback or __del__: keep it for checkpoint()
    raise exc()


def checkpoint() -> None:
    """Between stages: re-raise an interrupt that landed where Python ignores exceptions (an import lock's
    weakref callback, a finaliser), so Ctrl-C while starting still stops the command."""
    global _unhandled
    if _unhandled is not None:
        exc, _unhandled = _unhandled, None
        raise exc()


def interrupted() -> type[BaseException] | None:
    """The interrupt that landed where Python ignores exceptions and was not re-raised yet, if any."""
    return _unhandled


def clear() -> None:
    """The interrupt reached the top: nothing left to re-raise."""
    global _unhandled, _pending, _swallowed
    _unhandled = _pending = None
    _swallowed = 0


def _unraisable(unraisable) -> None:
    """Our interrupt, raised where Python cannot raise (a weakref callback such as WeakKeyDictionary's `remove`, a
    finaliser), was printed as "Exception ignored in ..." with a traceback (SIGTERM during tuning). It is ours and not
    lost: delivered again a moment later, where it can stop the command, and not printed."""
    global _swallowed
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _unhandled is not None:
        # its own count: _handler resets _redeliveries each time it raises, which would leave this unbounded
        if _swallowed < MAX_REDELIVERIES:
            _swallowed += 1
            _redeliver_later(getattr(_unhandled, "signum", signal.SIGINT))
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


def install() -> None:
    global _previous_unraisablehook
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _handler)
        if sys.unraisablehook is not _unraisable:
            _previous_unraisablehook, sys.unraisablehook = sys.unraisablehook, _unraisable


def raise_if_requested() -> None:
    global _pending
    if _pending is not None:
        exc, _pending = _pending, None
        raise exc()


@contextmanager
def training_section():
    """Inside: signals are deferred to the next step boundary. On leaving: a pending one is raised."""
    global _training_depth
    _training_depth += 1
    try:
        yield
    finally:
        _training_depth -= 1
    raise_if_requested()
