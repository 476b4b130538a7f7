"""FolderGuard, the one owner of a results folder for a command: checks on entry (nothing written), claims when the
inputs are valid, releases the lock on every exit; without a config it only locks (report --results)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finetune_compare import Config
from finetune_compare.errors import UserError
from finetune_compare.experiments.study import ownership
from finetune_compare.experiments.study.ownership import FolderGuard


def _locked_elsewhere(folder) -> bool:
    """Whether another process is refused the folder's lock."""
    code = ("import sys\nfrom pathlib import Path\nfrom finetune_compare.errors import UserError\n"
            "from finetune_compare.experiments.study.ownership import _lock\n"
            "try:\n    _lock(Path(sys.argv[1]))\nexcept UserError:\n    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code, str(folder)]).returncode == 3


def test_a_bad_folder_is_refused_on_entry_and_nothing_is_written(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UserError, match="exists and is a file, not a directory"):
        with FolderGuard(Config(output_dir=str(target))):
            raise AssertionError("not reached")
    assert target.read_text() == "x" and target.resolve() not in ownership._held_locks


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_the_claim_writes_the_marker_and_every_exit_releases_the_lock(tmp_path, stop):
    out = tmp_path / "out"
    with pytest.raises(stop):
        with FolderGuard(Config(output_dir=str(out))) as folder:
            assert folder.state == "new" and not out.exists()  # checked, nothing written yet
            folder.claim()
            assert (out / "experiment.yaml").is_file() and (out / "config.yaml").is_file()
            assert _locked_elsewhere(out)
            raise stop()
    assert out.resolve() not in ownership._held_locks and not _locked_elsewhere(out)


def test_without_a_config_it_only_locks(tmp_path):
    with FolderGuard(None, tmp_path) as folder:
        assert folder.state is None and _locked_elsewhere(tmp_path)
        assert not (tmp_path / "experiment.yaml").exists()
    assert not _locked_elsewhere(tmp_path)
