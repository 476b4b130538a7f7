"""Checks that need no model, no data and no torch: run by the CLI right after the config loads, so a bad device, a
folder of another configuration or in use, or a path nothing can be written to answers in about a second instead of
after torch, transformers or Ray have loaded (a minute on a busy machine).

Nothing here imports torch, transformers, peft, datasets or ray (a test blocks those imports and times the answers).
The same checks run again where the work happens; these only make the common mistakes cheap.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
from pathlib import Path

from ...config import Config
from ...errors import ConfigError, UserError
from ...layout import Layout
from ...utils.distributed import is_main
from ...utils.io import creation_problem
from ..study.ownership import check_output_dir

# Commands that claim an output folder (sweep points are checked by the sweep itself, after these)
WRITES_OUTPUT = ("compare", "sweep", "train", "lora", "full", "data", "optimize")
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def gpu_present() -> bool:
    """Whether this machine shows any GPU device node (NVIDIA, or ROCm's /dev/kfd), read without starting CUDA."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/kfd")


def check_device(device: str) -> None:
    if device.startswith("cuda") and not gpu_present():
        raise ConfigError(f"config key 'device': '{device}' requested but no CUDA device is available; use auto or "
                          "cpu")


def check_unlocked(out: Path) -> None:
    """A folder another command is writing into is refused now, naming the holder (the lock is taken later)."""
    lock = Layout(out).lock
    if not lock.is_file():
        return
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError as exc:
        raise UserError(f"cannot read the lock file '{lock}' of output directory '{out}': {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        raise UserError(f"output directory '{out}' is in use by {holder}; wait for it to finish, or use another "
                        "--output-dir") from None
    finally:
        os.close(fd)  # also releases the probe's lock


def check_file_target(path: str, option: str) -> None:
    """A file the command will write at its end (plan --json, predict --output): refused now if it cannot be."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{option} '{path}' is a directory; give a file name")
    folder = target.parent if str(target.parent) else Path(".")
    problem = creation_problem(folder)
    if problem is None and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        problem = f"'{folder}' is not writable"
    if problem is None and target.exists() and not os.access(target, os.W_OK):
        problem = f"'{target}' is not writable"
    if problem is None and folder.is_dir():
        problem = _probe_write(folder)  # /proc and other pseudo file systems pass access() but refuse files
    if problem:
        raise UserError(f"{option} '{path}' cannot be written: {problem}")


def _probe_write(folder: Path) -> str | None:
    probe = folder / f".finetune-compare-probe-{os.getpid()}"
    try:
        probe.open("x").close()
        probe.unlink()
    except FileExistsError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def check_storage(url: str) -> None:
    """An Optuna storage URL: a journal file whose folder can be made, or a database URL of a known scheme."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if path.is_dir():
            raise UserError(f"cannot use journal storage '{path}': it is a directory; give a file name")
        problem = creation_problem(path.parent)
        if problem:
            raise UserError(f"cannot use journal storage '{path}': {problem}")
        return
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in STORAGE_SCHEMES:
        raise UserError(f"--storage '{url.split('@')[-1]}': not a storage URL Optuna takes; use journal:PATH, or "
                        f"one of {', '.join(s + '://' for s in STORAGE_SCHEMES)}")
    if scheme == "sqlite":
        path = url.split(":///", 1)[-1]
        problem = creation_problem(Path(path).parent) if path and path != ":memory:" else None
        if problem:
            raise UserError(f"cannot open Optuna storage '{url}': {problem}")


def check_data_paths(config: Config) -> None:
    """The data the config names exists (a local copy's folder, your own files): the readers' own messages."""
    from ...data.files import check_file
    from ...data.loading import check_data_dir

    if config.data.data_source == "local":
        check_data_dir(config.data.data_dir)
    if config.data.data_source == "files":
        for key in ("train_file", "validation_file", "test_file"):
            if getattr(config, key):
                check_file(getattr(config, key), key)


def early_checks(config: Config, args) -> None:
    """Everything about `config` and the command line that can be known without a model, data or torch."""
    check_device(config.training.device)
    if args.mode in WRITES_OUTPUT or args.mode == "plan":
        check_data_paths(config)
    if args.mode in WRITES_OUTPUT:  # (plan states the folder's state in its own output instead)
        out = Path(config.experiment.output_dir)
        try:
            check_output_dir(config, out, getattr(args, "overwrite", False) and is_main())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            raise UserError(f"output directory '{out}' cannot be read: {exc.strerror or exc}") from None
        if is_main():  # under torchrun, rank 0 takes the lock while the other ranks start
            check_unlocked(out)
    if getattr(args, "plan_json", None):
        check_file_target(args.plan_json, "--json")
    if getattr(args, "storage", None):
        check_storage(args.storage)
