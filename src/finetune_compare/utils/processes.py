"""Who runs what: a "host:pid:start" worker id, and whether the process behind one has died.

Optuna trials and MLflow runs are tagged with it, so a later start can tell a run left RUNNING by a
killed process (kill -9, power loss) from one a live process is still working on. The process's start
time is part of the id: after a reboot or a long while, the same pid may belong to another process.
"""

from __future__ import annotations

import os
import socket

import psutil


def _start_time(pid: int) -> int | None:
    """The process's start time in centiseconds since the epoch, or None when there is no such process."""
    try:
        return int(psutil.Process(pid).create_time() * 100)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def is_dead_local_worker(worker: str) -> bool:
    """True when `worker` names a process of this host that no longer exists (its pid is free, or now belongs to a
    process started at another time); other hosts are never judged. Ids without a start time ("host:pid",
    written by earlier versions) are judged by the pid alone."""
    parts = str(worker).split(":")
    if len(parts) not in (2, 3) or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    now = _start_time(pid)
    if now is None:
        return True
    return len(parts) == 3 and parts[2].isdigit() and int(parts[2]) != now
