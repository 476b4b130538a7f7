import signal

import pytest

from finetune_compare.training.trainer import StopOnSignal
from finetune_compare.utils import signals


def test_signal_during_training_waits_for_the_step_boundary():
    with pytest.raises(signals.Terminated):
        with signals.training_section():
            signals._handler(signal.SIGTERM, None)  # deferred: no exception inside a library call
            callback = StopOnSignal()
            with pytest.raises(signals.Terminated):
                callback.on_step_end(None, None, None)  # raised here, between steps
            signals._handler(signal.SIGTERM, None)
    # (the second pending signal is raised on leaving the section)


def test_second_signal_or_outside_training_raises_at_once():
    with pytest.raises(KeyboardInterrupt):
        signals._handler(signal.SIGINT, None)
    with pytest.raises(signals.Terminated):
        with signals.training_section():
            signals._handler(signal.SIGTERM, None)
            signals._handler(signal.SIGTERM, None)  # impatient user: stop now
    assert signals._pending is None
