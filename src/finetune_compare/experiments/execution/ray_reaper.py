"""Ray's own processes outlive a driver killed with SIGKILL: after `kill -9` of a `--backend ray` command, Ray's
DashboardAgent and RuntimeEnvAgent (children of the raylet) stayed alive, orphaned, holding ~100 MB each, until the
machine restarted (measured with ray 2.60.0: gcs_server and raylet go with the driver, the agents do not).

Nothing inside the driver can run after SIGKILL, so the private Ray gets a small watcher process beside it: it
notes, once a second, every Ray process descended from the driver (their command line in Ray's package, or a
`ray::` process title), and when the driver is gone it waits a moment for Ray's own fate-sharing, then kills those
still running. It only ever kills processes it saw descended from the driver and that are still the same processes
(psutil checks their start time), only Ray's, and it ends with the driver (or after MAX_SECONDS in any case).

    python -m finetune_compare.experiments.execution.ray_reaper DRIVER_PID
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 1.0
GRACE_SECONDS = 3.0  # Ray's own fate-sharing gets this long first
MAX_SECONDS = 14 * 24 * 3600  # a bound on the watch, far past any command's life


def start_reaper() -> subprocess.Popen | None:
    """The watcher for this process's private Ray, in its own session (a Ctrl-C to the terminal does not stop it)."""
    try:
        return subprocess.Popen([sys.executable, "-m", "finetune_compare.experiments.execution.ray_reaper", str(os.getpid())],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    except OSError:
        return None  # the command runs as before; only the clean-up after a SIGKILL is lost


def _ray_root() -> str:
    import importlib.util

    spec = importlib.util.find_spec("ray")
    return str(Path(spec.origin).parent) if spec and spec.origin else "\0"  # nothing matches without Ray


def is_rays(process, ray_root: str) -> bool:
    """A process Ray started: its title is `ray::...` (workers, agents) or it runs a file of Ray's package (gcs_server,
    raylet, the monitors)."""
    try:
        cmdline = process.cmdline()
    except Exception:  # noqa: BLE001 - gone or not ours to read
        return False
    return bool(cmdline) and (cmdline[0].startswith("ray::") or any(part.startswith(ray_root) for part in cmdline))


def watch(driver_pid: int, poll: float = POLL_SECONDS, max_seconds: float = MAX_SECONDS) -> list[int]:
    """Wait for the driver to end, then kill the Ray processes seen under it that are still running; their pids."""
    import psutil

    ray_root = _ray_root()
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return []
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + max_seconds
    while _alive(driver):
        if time.monotonic() >= deadline:
            return []
        try:
            for child in driver.children(recursive=True):
                if child.pid != os.getpid() and child.pid not in seen and is_rays(child, ray_root):
                    seen[child.pid] = child
        except psutil.Error:
            pass  # the driver or a child went while it was read: the next round (or the end) tells
        time.sleep(poll)
    time.sleep(GRACE_SECONDS)
    killed = []
    for pid, process in seen.items():
        try:
            if process.is_running():  # the same process: psutil compares its start time
                process.kill()
                killed.append(pid)
        except psutil.Error:
            pass
    return killed


def _alive(process) -> bool:
    """Running and not a zombie (a driver killed with SIGKILL stays a zombie until its parent reaps it)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def main() -> None:
    watch(int(sys.argv[1]))


if __name__ == "__main__":
    main()
