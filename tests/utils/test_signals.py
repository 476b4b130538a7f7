import signal

import pytest

from finetune_compare.training.trainer import StopOnSignal
from finetune_compare.utils import signals


@pytest.fixture(autouse=True)
def _nothing_left_pending():
    """A signal raised here is kept for checkpoint(); a later test's command would stop on it (exit 143)."""
    yield
    signals.clear()


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


def test_a_signal_inside_an_import_is_delivered_once_the_import_is_done(tmp_path):
    """Raised inside an import, the interrupt could unwind through C++ module init code and abort the process
    (torch's extensions: exit -6 in CI); it waits for the import to finish, then stops the command as usual."""
    import subprocess
    import sys

    (tmp_path / "slow_module.py").write_text(
        "import signal, time\nsignal.raise_signal(signal.SIGINT)\nfor _ in range(50):\n    time.sleep(0.002)\n"
        "DONE = True\n")
    script = (f"import sys, time\nsys.path.insert(0, {str(tmp_path)!r})\nfrom finetune_compare.utils import signals\n"
              "signals.install()\ntry:\n    import slow_module\n    print('imported', slow_module.DONE, flush=True)\n"
              "    for _ in range(300):\n        time.sleep(0.01)\n    print('never interrupted')\n"
              "except KeyboardInterrupt:\n    print('interrupted')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60).stdout
    assert out.splitlines() == ["imported True", "interrupted"], out


def test_a_signal_inside_a_weakref_callback_stops_the_command_without_a_traceback():
    """SIGTERM during tuning printed "Exception ignored in: <function WeakKeyDictionary...remove>" and a traceback:
    the interrupt landed in a weakref callback, where Python cannot raise. It is delivered again instead, silently,
    and still stops the command (exit 143)."""
    import subprocess
    import sys

    script = ("import gc, os, signal, sys, time, weakref\nfrom finetune_compare.utils import signals\n"
              "signals.install()\nclass Key: pass\nd = weakref.WeakKeyDictionary()\nk = Key()\n"
              "d[k] = 1\nsent = []\n"
              "def on_collect(ref):\n    os.kill(os.getpid(), signal.SIGTERM)\n    for _ in range(1000):\n"
              "        sum(range(10))  # the handler runs here, inside the weakref callback\n    sent.append(1)\n"
              "r = weakref.ref(k, on_collect)\n"
              "try:\n    del k\n    gc.collect()\n    for _ in range(300):\n        time.sleep(0.01)\n"
              "    print('never stopped')\n"
              "except signals.Terminated as exc:\n    print('stopped', sent)\n    sys.exit(143)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and done.stdout.strip() == "stopped []", (done.stdout, done.stderr)
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
