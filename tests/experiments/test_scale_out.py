"""Scale-out on existing engines: torchrun DDP on CPU (gloo) and Optuna workers sharing PostgreSQL."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from ..conftest import tiny_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_torchrun_two_processes_rank0_writes(tiny_bert, tmp_path):
    cfg = tmp_path / "c.yaml"
    values = tiny_config(tiny_bert, tmp_path, num_epochs=1, tracking_mlflow=True, num_threads=1).to_dict()
    cfg.write_text(yaml.safe_dump(values))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(_free_port()), str(ROOT / "main.py"), "--mode", "lora", "--config", str(cfg)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = Path(values["output_dir"])
    metrics = yaml.safe_load((out / "runs" / "lora" / "seed-7" / "metrics.json").read_text())
    assert metrics["method"] == "lora" and metrics["data"]["test"] == 60
    assert proc.stdout.count("lora: test macro-F1") == 1  # one voice: rank 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("finetune-compare").experiment_id])
    assert len(runs) == 1  # tracked once, not once per rank


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.skip("PostgreSQL server not installed (Debian package 'postgresql')")
    pytest.importorskip("psycopg")
    bindir = Path(initdb[-1]).parent
    # PostgreSQL refuses to run as root: run it as the 'postgres' user in a folder it can reach
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="fc-pg-", dir="/tmp"))
    root.chmod(0o777)
    data, port = root / "data", _free_port()
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                              f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(postgres_url, tiny_bert, tmp_path):
    import optuna

    config = tmp_path / "c.yaml"
    values = tiny_config(tiny_bert, tmp_path).to_dict()
    values["search_space"] = {"common": {"batch_size": {"type": "categorical", "choices": [8]},
                                         "num_epochs": {"type": "categorical", "choices": [1]}}}
    config.write_text(yaml.safe_dump(values))
    base = [sys.executable, str(ROOT / "main.py"), "--mode", "optimize", "--method", "lora", "--config", str(config),
            "--storage", postgres_url, "--log-level", "WARNING"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    created = subprocess.run(base + ["--trials", "0"], env=env, capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr[-2000:]
    workers = [subprocess.Popen(base + ["--trials", "4", "--output-dir", str(tmp_path / f"w{i}")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err.decode()[-2000:]
    study = optuna.load_study(study_name="finetune-compare-lora", storage=postgres_url)
    numbers = [t.number for t in study.get_trials()]
    assert len(numbers) == len(set(numbers)) and 4 <= len(numbers) <= 5
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials())
