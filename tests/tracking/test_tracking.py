"""Tracking against a real MLflow server, offline W&B files, failure isolation, and secrets."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from finetune_compare.experiments.commands.compare import ComparisonExperiment

from ..conftest import tiny_config

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "art"),
           "--workers", "1"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {proc.stderr.read().decode()[-2000:]}")
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_comparison_logged_to_real_mlflow_server(mlflow_server, tiny_bert, tmp_path):
    from mlflow.tracking import MlflowClient

    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True, tracking_mlflow_uri=mlflow_server,
                      tracking_mlflow_experiment="itest", num_epochs=3)
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("itest")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("role") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["method"] for r in children) == ["full", "lora"]
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    lora = next(r for r in children if r.data.tags["method"] == "lora")
    assert lora.data.params["lora_r"] == "8" and lora.data.params["model_name"] == tiny_bert
    assert lora.data.tags["seed"] == "7" and lora.data.tags["model"] == tiny_bert
    on_disk = json.loads((Path(cfg.output_dir) / "runs/lora/seed-7/metrics.json").read_text())
    assert lora.data.metrics["test.macro_f1"] == pytest.approx(on_disk["test"]["macro_f1"])
    assert lora.data.metrics["params.trainable"] == on_disk["params"]["trainable"]
    history = client.get_metric_history(lora.info.run_id, "loss")
    assert len(history) > 2 and len({m.step for m in history}) == len(history)
    assert client.get_metric_history(lora.info.run_id, "eval_macro_f1")
    child_files = {a.path for a in client.list_artifacts(lora.info.run_id)}
    assert {"config.yaml", "metrics.json", "history.json", "predictions.jsonl"} <= child_files
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "comparison.json", "plots"} <= parent_files
    assert parent.data.metrics["lora.macro_f1"] == pytest.approx(on_disk["test"]["macro_f1"])


def test_default_local_store_and_offline_wandb(tiny_bert, tmp_path):
    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True, tracking_wandb=True, tracking_wandb_mode="offline",
                      num_epochs=3, save_model=True, tracking_mlflow_register_model=True)
    result = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    out = Path(cfg.output_dir)
    assert (out / "mlflow" / "mlflow.db").is_file() and not Path("mlruns").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    versions = client.search_model_versions("name='finetune-compare-model'")
    # chosen on validation, never on test
    best = max(result["methods"], key=lambda m: sum(r["validation"]["best_macro_f1"] for r in result["runs"]
                                                    if r["method"] == m))
    assert len(versions) == 1
    assert client.get_run(versions[0].run_id).data.tags["method"] == best
    run_files = sorted(out.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(run_files) == 3  # one W&B run per method x seed, and the comparison's verdict run
    contents = b"".join(p.read_bytes() for p in run_files)
    verdict = result["comparisons"]["lora_vs_full"]["primary"]["verdict"]
    assert b"verdict.lora_vs_full.kind" in contents and json.dumps(verdict["kind"]).encode() in contents
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("finetune-compare").experiment_id])
                  if r.data.tags.get("role") == "parent")
    assert parent.data.tags["verdict.lora_vs_full"] == verdict["kind"]
    diff = result["comparisons"]["lora_vs_full"]["primary"]["diff_mean"]
    assert parent.data.metrics["verdict.lora_vs_full.diff_mean"] == pytest.approx(diff)
    assert parent.data.tags["verdict.lora_vs_full.text"] == verdict["text"][:4900]
    for method in ("full", "lora"):
        final = json.loads((out / f"runs/{method}/seed-7/metrics.json").read_text())["test"]["macro_f1"]
        # summary records hold the key and the JSON-encoded value (protobuf keeps strings as bytes)
        assert json.dumps(final).encode() in contents
    assert b"test.macro_f1" in contents and b"eval_macro_f1" in contents


def test_unreachable_tracking_server_warns_once_and_run_completes(tiny_bert, tmp_path, caplog):
    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True, num_epochs=3,
                      tracking_mlflow_uri=f"http://127.0.0.1:{free_port()}")
    start = time.time()
    with caplog.at_level(logging.WARNING):
        result = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    warnings = [r for r in caplog.records if "MLflow" in r.getMessage()]
    assert len(warnings) == 1 and "disabled" in warnings[0].getMessage()
    assert (Path(cfg.output_dir) / "report.html").is_file() and result["n_runs"] == {"full": 1, "lora": 1}
    assert time.time() - start < 120


SECRETS = {"HF_TOKEN": "hf_FAKEtoken1234567890", "WANDB_API_KEY": "fakewandbkey0987654321abcdef",
           "MY_SERVICE_SECRET": "s3cr3t-value-xyz", "DB_PASSWORD": "hunter2-pw-abc"}


def test_no_secret_is_written_anywhere(tiny_bert, tmp_path, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True, tracking_wandb=True,
                      tracking_wandb_mode="offline", num_epochs=1, save_model=True,
                      hpo_storage="postgresql://alice:hunter2-pw-abc@db.internal/optuna")
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    leaks = []
    for path in Path(cfg.output_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [(str(path), k) for k, v in SECRETS.items() if v.encode() in data]
    assert not leaks, leaks


def test_runs_left_running_by_a_dead_process_are_killed_and_the_parent_is_reused(tiny_bert, tmp_path):
    """kill -9 leaves MLflow runs RUNNING; the next start marks them KILLED and resumes the same parent."""
    import socket
    import subprocess
    import sys

    from finetune_compare.tracking.mlflow_tracker import MlflowTracker

    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True)
    first = MlflowTracker(cfg.tracking, cfg.output_dir)
    first.start_parent("compare-out", cfg, {"kind": "comparison"})
    first.start_run("full-seed7", cfg, {"method": "full", "seed": 7})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for run_id in (first.parent_id, first.run_id):  # as if that process had been killed -9
        first.client.set_tag(run_id, "worker", f"{socket.gethostname()}:{dead.pid}")
    second = MlflowTracker(cfg.tracking, cfg.output_dir)
    second.start_parent("compare-out", cfg, {"kind": "comparison"})
    client = second.client
    assert second.parent_id == first.parent_id and client.get_run(second.parent_id).info.status == "RUNNING"
    assert client.get_run(first.run_id).info.status == "KILLED"
    second.end_parent("FINISHED", {}, [])
    parents = [r for r in client.search_runs([second.experiment_id]) if r.data.tags.get("role") == "parent"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_a_failing_mlflow_uri_with_a_password_leaks_it_nowhere(tiny_bert, tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    uri = f"http://user:pw123-s3cr3t@127.0.0.1:{free_port()}/?token=tok-abc-987"
    proc = subprocess.run(
        [sys.executable, str(root / "main.py"), "--mode", "full", "--output-dir", str(out),
         "--set", f"model_name={tiny_bert}", "--set", "data_source=embedded", "--set", "samples_per_class=70",
         "--set", "test_samples_per_class=10", "--set", "num_epochs=1", "--set", "mixed_precision=no",
         "--set", "tracking.wandb=false", "--set", f"tracking.mlflow_uri={uri}", "--set", "num_threads=1"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MLflow" in proc.stderr and "user:***@127.0.0.1" in proc.stderr  # the warning is there, masked
    for secret in ("pw123-s3cr3t", "tok-abc-987"):
        assert secret not in proc.stdout + proc.stderr
        leaks = [p for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert not leaks, leaks


def test_online_wandb_without_network_falls_back_to_offline_at_once(tiny_bert, tmp_path, monkeypatch, caplog):
    from finetune_compare.tracking.wandb_tracker import WandbTracker

    monkeypatch.setenv("WANDB_API_KEY", "fakewandbkey0987654321abcdef")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    cfg = tiny_config(tiny_bert, tmp_path, tracking_wandb=True, tracking_wandb_mode="auto")
    start = time.time()
    with caplog.at_level(logging.WARNING):
        tracker = WandbTracker(cfg.tracking, tmp_path / "out")
    assert tracker.mode == "offline" and time.time() - start < 10
    assert any("is unreachable; logging offline" in r.getMessage() for r in caplog.records)


def test_runs_without_mlflow_or_wandb_installed(tiny_bert, tmp_path, monkeypatch, caplog):
    """Both trackers on, both packages hidden: one clear line each, the comparison completes."""
    import sys

    for name in [m for m in list(sys.modules) if m == "mlflow" or m.startswith(("mlflow.", "wandb"))] + ["mlflow",
                                                                                                       "wandb"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import mlflow` now raises ImportError
    cfg = tiny_config(tiny_bert, tmp_path, tracking_mlflow=True, tracking_wandb=True, tracking_wandb_mode="offline",
                      num_epochs=1, methods=["full"], evaluate_base_model=False)
    with caplog.at_level(logging.WARNING):
        ComparisonExperiment(cfg).run_multiple_runs(cfg)
    messages = [r.getMessage() for r in caplog.records]
    assert "MLflow tracking is on but mlflow is not installed: pip install mlflow, or set tracking_mlflow: false; " \
           "continuing without it" in messages
    assert any(m.startswith("W&B tracking is on but wandb is not installed") for m in messages)
    assert (Path(cfg.output_dir) / "report.html").is_file()
