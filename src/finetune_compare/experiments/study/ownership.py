"""Own an output folder safely: never mix two configurations, never delete what we did not write.

The first experiment in a folder writes `experiment.yaml`: every config key that can
change a result. That file is also our ownership marker. A folder is claimed only if it
is new, or empty of our result names, or already marked by us; so inside a marked folder
every result entry (RESULT_ENTRIES) was written by this project, and `--overwrite`
deletes those entries and nothing else. A folder that holds result-named entries of
another tool (no marker) is refused, with or without `--overwrite`.

Two phases, so that a command failing on bad input changes nothing on disk (`FolderGuard` runs both for every
command, and releases the lock when the command ends):
- `check_output_dir` (no side effects) runs before anything expensive;
- `claim_output_dir` runs after config, model and data were validated: it takes an
  exclusive lock (a second command on the same folder is refused, naming the holder; the
  OS drops the lock of a dead process, so a stale lock never blocks), clears the old
  results when `--overwrite` asks for it, then writes the marker.

Keys that only say how much to run or where to log (num_runs, methods, tracking, search
settings, threads) may differ: adding seeds or a method to a comparison is a resume.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import yaml

from ...config import FILE_KEYS, Config, config_keys, config_to_yaml
from ...redaction import redact
from ...errors import UserError
from ...layout import MARKER, RESULT_ENTRIES, Layout
from ...utils.distributed import is_main
from ...utils.io import atomic_write_text, creation_problem, file_digest, write_yaml

log = logging.getLogger(__name__)

NOT_RESULT_AFFECTING = {
    "num_runs", "methods", "output_dir", "evaluate_base_model", "num_workers", "num_threads", "save_model",
    "save_merged", "save_dir", "save_checkpoints", "checkpoint_minutes",
    "use_lora", "search_space", "device", "gpu_memory_fraction",
    "oom_retry", "sweep",  # a sweep's grid may grow: every point guards its own folder
}
NOT_RESULT_PREFIXES = ("tracking_", "hpo_", "execution_")
_held_locks: dict[Path, int] = {}  # folder -> open file descriptor holding its flock


def result_affecting(config: Config) -> dict:
    keys = {k: v for k, v in redact(config.to_dict()).items()
            if k not in NOT_RESULT_AFFECTING and not k.startswith(NOT_RESULT_PREFIXES)}
    return {**keys, **data_files_identity(config)}


def data_files_identity(config: Config) -> dict:
    """Your own data files by content, not only by path: a folder must never resume runs trained on a file that
    has since been edited (the preset's data is fixed by its config keys)."""
    if config.data.data_source != "files":
        return {}
    digests = {}
    for key in FILE_KEYS:
        path = getattr(config, key)
        if path and Path(path).is_file():  # a missing file fails with its own message when the data is built
            digests[key] = file_digest(path)  # the same digest keys what the data reader reads (data/files.py)
    return {"data_files_sha256": digests}


def _read_marker(guard: Path) -> dict:
    try:
        data = yaml.safe_load(guard.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"'{guard}' is unreadable or corrupt ({type(exc).__name__}); it marks the folder's "
                        "results: restore it, or delete the folder's results and run again") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"'{guard}' is corrupt (expected a mapping of config keys, got {type(data).__name__}); "
                        "restore it, or delete the folder's results and run again")
    return data


def _foreign_entries(out: Path) -> list[str]:
    return [name for name in RESULT_ENTRIES if name != MARKER and (out / name).exists()]


def check_output_dir(config: Config, output_dir: str | Path, overwrite: bool = False) -> str:
    """Validate the folder without touching it: 'new', 'resume', 'replace-caches' (only our caches and marker of an
    earlier configuration are there) or 'replace' (work of another configuration, and --overwrite given)."""
    if str(output_dir).strip() == "":
        raise UserError("output directory is empty: give a folder name with --output-dir or output_dir")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output directory '{out}' exists and is a file, not a directory")
    problem = creation_problem(out)
    if problem:
        raise UserError(f"output directory '{out}' cannot be created: {problem}")
    guard = Layout(out).marker
    if not guard.is_file():
        foreign = _foreign_entries(out)
        if foreign:
            raise UserError(
                f"output directory '{out}' already holds {', '.join(repr(f) for f in foreign)} without an "
                f"{MARKER}: they were not written by finetune-compare, so it will neither use nor delete them "
                "(--overwrite included); choose a new or empty --output-dir"
            )
        return "new"
    previous, current = _read_marker(guard), result_affecting(config)
    grid = previous.get("sweep_grid") or _recorded_sweep(out)
    if grid and not config.experiment.sweep:
        raise UserError(f"output directory '{out}' holds a sweep (grid: {', '.join(grid)}); only "
                        f"`finetune-compare sweep` adds to it, and `finetune-compare report --results {out}` rebuilds "
                        "its report: use another --output-dir for this command")
    diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k) and k != "sweep_grid"
                  and not _added_at_default(k, previous, current))
    if not diff:
        return "resume"
    work = work_in(out)
    if not work:
        # a command that failed after claiming (NaN loss, Ctrl-C in the first run) left only our marker and
        # caches: nothing to protect, so the corrected command takes the folder without --overwrite
        log.info("%s holds no work of its earlier configuration (only caches); replacing them", out)
        return "replace-caches"
    if not overwrite:
        shown = "; ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in diff[:6])
        more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
        raise UserError(
            f"output directory '{out}' holds results of a different configuration ({shown}{more}); "
            "use another --output-dir, or --overwrite to delete those results"
        )
    return "replace"


def _added_at_default(key: str, previous: dict, current: dict) -> bool:
    """A key this version knows and the folder's marker does not (a method registered since, e.g. loha_r), at its
    default: the runs there were trained without it, exactly as they would be now."""
    keys = config_keys()
    return key not in previous and key in keys and current.get(key) == keys[key].default


def _recorded_sweep(out: Path) -> list[str]:
    """The swept keys config.yaml records (folders written before the marker named its grid)."""
    try:
        data = yaml.safe_load(Layout(out).config.read_text(encoding="utf-8")) if Layout(out).config.is_file() else {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    sweep = data.get("sweep") if isinstance(data, dict) else None
    return list(sweep) if isinstance(sweep, dict) else []


WORK_FOLDERS = ("runs", "points", "optimize")  # anything in these is training progress or a result


def work_in(out: Path) -> list[str]:
    """What in `out` is work a command must not silently delete: finished or resumable runs (a checkpoint is
    training progress too), sweep points, search trials, a report. Empty folders and caches are not work."""
    layout = Layout(out)
    found = []
    for name in WORK_FOLDERS:
        folder = out / name
        if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
            found.append(f"{name}/")
    found += [p.name for p in (layout.comparison, layout.report_html, layout.sweep_summary) if p.is_file()]
    return found


def _lock(out: Path) -> None:
    key = out.resolve()
    if key in _held_locks:
        return
    path = Layout(out).lock
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        raise UserError(f"cannot open the lock file '{path}' of output directory '{out}': {exc.strerror or exc}"
                        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise UserError(f"output directory '{out}' is in use by {holder}; wait for it to finish, "
                        "or use another --output-dir") from None
    # write, then cut to length: the file is never empty while held (a truncate first left a window in which
    # a second command read nothing and could not name the holder)
    line = f"pid {os.getpid()} on {socket.gethostname()}\n".encode()
    os.pwrite(fd, line, 0)
    os.ftruncate(fd, len(line))
    _held_locks[key] = fd


def _lock_holder(fd: int) -> str:
    """'pid N on HOST' from the lock file; the holder writes it just after taking the lock, so wait briefly."""
    for _ in range(40):
        lines = os.pread(fd, 200, 0).decode("utf-8", "replace").strip().splitlines()
        if lines:
            return lines[0]
        time.sleep(0.05)
    return "another process"


class FolderGuard:
    """The one owner of a results folder for the length of a command: `with FolderGuard(config, out, overwrite) as
    folder:` checks the folder against the config on entry (nothing written, so a command that fails on bad input
    changes nothing); `folder.claim()`, called once config, model and data are validated, takes the lock, clears
    our old results when --overwrite asks for it, and writes the marker and config.yaml; every exit (an error or
    an interrupt included) releases the lock.

    Without a config (`report --results`, which rewrites the report files of a finished folder), entering takes the
    lock only: a running compare or sweep there is refused, and none starts while it rewrites. Under torchrun every
    rank checks and only rank 0 claims."""

    def __init__(self, config: Config | None, output_dir: str | Path | None = None, overwrite: bool = False):
        self.config = config
        self.out = Path(output_dir if output_dir is not None else config.experiment.output_dir)
        self.overwrite = overwrite
        self.state: str | None = None  # check_output_dir's answer: new, resume, replace-caches or replace

    def __enter__(self) -> FolderGuard:
        if self.config is None:
            try:
                _lock(self.out)
            except OSError as exc:
                raise UserError(f"cannot lock '{self.out}': {exc.strerror or exc}") from None
            return self
        return self.check()

    def check(self) -> FolderGuard:
        """The folder against the config, nothing written (what entering does)."""
        self.state = check_output_dir(self.config, self.out, self.overwrite)
        return self

    def claim(self, config: Config | None = None) -> None:
        """Claim the folder for `config` (the guard's own by default: a tuned comparison claims with the config it
        was checked with)."""
        if is_main():
            claim_output_dir(config or self.config, self.out, self.overwrite)

    def __exit__(self, *exc) -> None:
        release_output_dir(self.out)


def release_output_dir(output_dir: str | Path) -> None:
    """Drop this process's lock on the folder (the OS drops it anyway when the process ends)."""
    fd = _held_locks.pop(Path(output_dir).resolve(), None)
    if fd is not None:
        os.close(fd)


def claim_output_dir(config: Config, output_dir: str | Path, overwrite: bool = False) -> None:
    """Lock the folder, clear our old results if `overwrite` is needed, and write the marker."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _lock(out)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise  # the CLI's one message for a full disk
        raise UserError(f"cannot write to output directory '{out}': {exc.strerror or exc}") from None
    try:
        state = check_output_dir(config, out, overwrite)
        if state in ("replace", "replace-caches"):
            clear_results(out, caches_only=state == "replace-caches")
        marker = result_affecting(config)
        if config.experiment.sweep:  # a sweep folder says so: other commands must not write into it
            marker["sweep_grid"] = list(config.experiment.sweep)
        write_yaml(Layout(out).marker, marker)
        # the whole resolved config of the latest command (secrets masked): the report's "Reproduce" command
        atomic_write_text(Layout(out).config, config_to_yaml(config))
    except OSError as exc:
        release_output_dir(out)
        if exc.errno == errno.ENOSPC:
            raise
        raise UserError(f"cannot write to output directory '{out}': {exc.strerror or exc}") from None
    except BaseException:
        release_output_dir(out)
        raise


CACHE_ENTRIES = ("cache", "data_summary.json", "config.yaml", "plots", "report.md", "sweep_report.html",
                 "sweep_report.md", MARKER)  # replaced without --overwrite when the folder holds no work


def clear_results(out: Path, caches_only: bool = False) -> None:
    """Delete our result entries (only our caches and marker with `caches_only`); only called for a folder that
    holds our marker."""
    if not Layout(out).marker.is_file():  # never reached through check_output_dir; a last line of defence
        raise UserError(f"refusing to delete results in '{out}': it has no {MARKER}")
    work = work_in(out) if caches_only else []
    if work:  # the same last line of defence for work
        raise UserError(f"refusing to replace '{out}': it holds work ({', '.join(work)})")
    for name in CACHE_ENTRIES if caches_only else RESULT_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if caches_only:
        log.info("replaced the caches of an earlier configuration in %s (it held no runs or results)", out)
    else:
        log.warning("--overwrite: removed earlier results of finetune-compare in %s", out)
