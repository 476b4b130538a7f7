"""Guard an output folder against mixing results of two configurations.

The first experiment in a folder writes `experiment.yaml`: every config key that can
change a result. A later command in the same folder must match it (so resuming is safe)
or stop with a message naming the differing keys; `--overwrite` deletes the old results.
Keys that only say how much to run or where to log (num_runs, methods, tracking, search
settings, threads) may differ: adding seeds or a method to a comparison is a resume.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import yaml

from ..config import Config, redact
from ..errors import UserError
from ..utils.io import write_yaml

log = logging.getLogger(__name__)

GUARD_FILE = "experiment.yaml"
NOT_RESULT_AFFECTING = {
    "num_runs", "methods", "output_dir", "evaluate_base_model", "num_workers", "num_threads", "save_model",
    "save_merged", "save_dir", "save_checkpoints", "use_lora", "search_space", "device", "gpu_memory_fraction",
    "oom_retry",
}
NOT_RESULT_PREFIXES = ("tracking_", "hpo_")
RESULT_ENTRIES = ("runs", "plots", "optimize", "cache", "report.html", "report.md", "comparison.json",
                  "data_summary.json", GUARD_FILE)


def result_affecting(config: Config) -> dict:
    return {k: v for k, v in redact(config.to_dict()).items()
            if k not in NOT_RESULT_AFFECTING and not k.startswith(NOT_RESULT_PREFIXES)}


def guard_output_dir(config: Config, output_dir: str | Path, overwrite: bool = False, record: bool = True) -> None:
    """Refuse a folder holding another configuration's results (or clear it with `overwrite`).

    With `record=False` it only checks: callers record after everything else was validated,
    so a command that fails on bad input leaves nothing that blocks the corrected command.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output directory '{out}' exists and is a file, not a directory")
    current = result_affecting(config)
    guard = out / GUARD_FILE
    if guard.is_file():
        previous = yaml.safe_load(guard.read_text(encoding="utf-8")) or {}
        diff = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if diff and not overwrite:
            shown = "; ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in diff[:6])
            more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
            raise UserError(
                f"output directory '{out}' holds results of a different configuration ({shown}{more}); "
                "use another --output-dir, or --overwrite to delete those results"
            )
        if diff and overwrite:
            clear_results(out)
    elif overwrite:
        clear_results(out)
    if not record:
        return
    try:
        write_yaml(guard, current)
    except OSError as exc:
        raise UserError(f"cannot write to output directory '{out}': {exc.strerror or exc}") from None


def clear_results(out: Path) -> None:
    for name in RESULT_ENTRIES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log.warning("--overwrite: removed earlier results in %s", out)
