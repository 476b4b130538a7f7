"""The built wheel works outside a clone: its presets ship as package data and resolve by name."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _sh(cmd: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_wheel_runs_a_preset_by_name_from_another_folder(tmp_path, tiny_bert):
    dist = tmp_path / "dist"
    _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
         str(ROOT)], cwd=tmp_path)
    wheel = next(dist.glob("finetune_compare-*.whl"))
    fresh = tmp_path / "fresh"
    _sh([sys.executable, "-m", "venv", "--without-pip", str(fresh)], cwd=tmp_path)
    _sh([sys.executable, "-m", "pip", "--python", str(fresh / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", str(wheel)], cwd=tmp_path)
    # the libraries come from the test's environment (a .pth adds its site-packages; .pth files inside it, such as
    # the editable install of this clone, are not processed), the package itself from the wheel
    site = subprocess.run([str(fresh / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = str(fresh / "bin" / "finetune-compare")
    where = _sh([str(fresh / "bin" / "python"), "-c", "import finetune_compare; print(finetune_compare.__file__)"],
                cwd=elsewhere).stdout
    assert where.startswith(site), where  # not this clone's src/
    assert "\nsamples_per_class  (data;" in _sh([cli, "config", "--list"], cwd=elsewhere).stdout
    shown = _sh([cli, "config", "--config", "quickstart"], cwd=elsewhere).stdout
    assert "model_name: embedded-minilm" in shown and "output_dir: outputs/quickstart" in shown
    _sh([cli, "compare", "--config", "quickstart", "--set", f"model_name={tiny_bert}", "--set",
         "samples_per_class=40", "--set", "test_samples_per_class=20", "--set", "val_fraction=0.2", "--set",
         "budget_unit=steps", "--set", "budget=2", "--set", "method_overrides={}", "--set", "num_threads=1",
         "--set", "mixed_precision=no", "--set", "tracking.mlflow=false", "--set", "tracking.wandb=false",
         "--quiet"], cwd=elsewhere)
    assert (elsewhere / "outputs" / "quickstart" / "comparison.json").is_file()
