"""Who runs what: a "host:pid" worker id, and whether the process behind one has died.

Optuna trials and MLflow runs are tagged with it, so a later start can tell a run left RUNNING by a
killed process (kill -9, power loss) from one a live process is still working on.
"""

from __future__ import annotations

import os
import socket

import psutil


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead_local_worker(worker: str) -> bool:
    """True when `worker` names a process of this host that no longer exists; other hosts are never judged."""
    host, _, pid = str(worker).rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))
