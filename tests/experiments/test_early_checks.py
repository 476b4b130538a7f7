"""Pre-flight in seconds: what needs no model, data or torch is refused before torch, transformers or Ray load.

Each case runs the CLI in a fresh interpreter where importing torch (and the other heavy libraries) fails, so an
answer proves the check ran before them; the clock proves it answers within 3 s."""

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from finetune_compare.experiments.commands.early_checks import gpu_present

BLOCKED = ("torch", "transformers", "peft", "datasets", "ray", "optuna", "mlflow", "wandb", "sklearn", "accelerate")
RUNNER = f"""
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked in this test: " + name)
sys.meta_path.insert(0, Blocked())
from finetune_compare.cli import main
sys.exit(main(sys.argv[1:]))
"""
SMALL = ["--set", "data_source=embedded", "--set", "samples_per_class=70"]


def _run(argv: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return proc.returncode, proc.stderr, time.perf_counter() - start


def _other_config(tmp_path) -> Path:
    out = tmp_path / "other"
    (out / "runs" / "full" / "seed-42").mkdir(parents=True)
    (out / "runs" / "full" / "seed-42" / "metrics.json").write_text("{}")
    (out / "experiment.yaml").write_text(yaml.safe_dump({"learning_rate": 0.5}))
    return out


def _cases(tmp_path):
    other = _other_config(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    cases = [
        ("another configuration's folder", ["compare", "--output-dir", str(other)] + SMALL,
         f"error: output directory '{other}' holds results of a different configuration"),
        ("a folder in use", ["compare", "--output-dir", str(busy)] + SMALL,
         f"error: output directory '{busy}' is in use by pid 4242 on host-a; wait for it to finish, or use another "
         "--output-dir"),
        ("a plan file nothing can write", ["plan", "--config", "configs/quickstart.yaml", "--json",
                                           "/proc/plan.json"],
         "error: --json '/proc/plan.json' cannot be written: "),
        ("a storage URL Optuna does not take", ["optimize", "--trials", "1", "--storage", "bogus://db",
                                                "--output-dir", str(tmp_path / "o")] + SMALL,
         "error: --storage 'bogus://db': not a storage URL Optuna takes; use journal:PATH, or one of sqlite://"),
        ("a bad config value", ["compare", "--set", "batch_size=0", "--output-dir", str(tmp_path / "o")],
         "error: config key 'batch_size'"),
        ("a data folder that is not there", ["compare", "--set", "data_source=local", "--set", "data_dir=/no/such",
                                             "--output-dir", str(tmp_path / "o")],
         "error: data_dir '/no/such' does not exist or is not a directory"),
        ("a data file that is not there", ["data", "--set", "data_source=files", "--set", "train_file=/no/t.csv",
                                           "--set", "test_file=/no/u.csv", "--output-dir", str(tmp_path / "o")],
         "error: config key 'train_file': file '/no/t.csv' does not exist or is not a file"),
    ]
    if not gpu_present():
        cases.append(("a GPU this machine does not have", ["compare", "--set", "device=cuda", "--output-dir",
                                                           str(tmp_path / "o")] + SMALL,
                      "error: config key 'device': 'cuda' requested but no CUDA device is available; use auto or cpu"))
    return cases, busy


def test_preflight_answers_in_seconds_without_torch(tmp_path):
    cases, busy = _cases(tmp_path)
    lock = busy / ".finetune-compare.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, as a running compare holds it
    os.pwrite(fd, b"pid 4242 on host-a\n", 0)
    root = Path(__file__).resolve().parents[2]
    try:
        cwd = os.getcwd()
        os.chdir(root)  # the plan case names configs/quickstart.yaml as the README does
        try:
            results = [(name, expected, *_run(argv)) for name, argv, expected in cases]
        finally:
            os.chdir(cwd)
    finally:
        os.close(fd)
    for name, expected, code, err, seconds in results:
        lines = err.strip().splitlines()
        assert code == 2 and lines and lines[-1].startswith(expected), (name, err[-1500:])
        assert "Traceback" not in err and "blocked in this test" not in err, (name, err[-1500:])
        assert seconds < 3, f"{name}: {seconds:.1f} s"
    assert not (tmp_path / "o").exists()


def test_the_blocker_blocks():
    code, err, _ = _run(["--help"])
    assert code == 0
    proc = subprocess.run([sys.executable, "-c", RUNNER.replace("from finetune_compare.cli import main\nsys.exit("
                                                                "main(sys.argv[1:]))", "import torch")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "blocked in this test: torch" in proc.stderr
