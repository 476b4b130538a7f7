"""The on-demand scripts stay runnable: the GPU check's CPU smoke mode, the decision-rule simulation."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_runs_on_cpu_and_refuses_cuda_claims_without_a_gpu():
    import torch

    smoke = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--device", "cpu"],
                           capture_output=True, text=True, timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert "ok    tiny compare" in smoke.stdout and "2 of 2 checks passed" in smoke.stdout
    if not torch.cuda.is_available():
        gpu = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py")], capture_output=True, text=True)
        assert gpu.returncode == 2 and gpu.stderr.startswith("error: no CUDA device visible")


@pytest.mark.slow
def test_decision_rule_simulation_script_runs(tmp_path):
    """The script behind the published table, on a few folders; it resumes from its output file."""
    import json

    argv = [sys.executable, str(ROOT / "benchmarks/simulate_decision_rule.py"), "--reps", "3", "--scenarios",
            "test-noise", "--pairs", "3", "--out", str(tmp_path / "dr.json")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cells = json.loads((tmp_path / "dr.json").read_text())["cells"]
    assert set(cells) == {"test-noise/3/0", "test-noise/3/1"} and all(c["reps"] == 3 for c in cells.values())
    assert "| test-noise | 3 |" in (tmp_path / "dr.md").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "claims" not in again.stdout.split("| scenario")[0]  # nothing rerun


@pytest.mark.slow
def test_reference_cost_estimate_reproduces_the_published_gpu_hours(tmp_path):
    """The estimate in docs/results comes from committed files: the published study and the H100 check."""
    import json

    out = tmp_path / "estimate.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/estimate_reference_cost.py"),
                          "--study", str(ROOT / "docs/results/minilm-size-sweep"),
                          "--gpu-check", str(ROOT / "benchmarks/results/gpu-check.json"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    estimate = json.loads(out.read_text())
    published = json.loads((ROOT / "docs/results/reference-cost-estimate.json").read_text())
    assert estimate["measured"]["gpu_ms_per_step"] == published["measured"]["gpu_ms_per_step"]
    assert round(estimate["reference_sweep"]["total_gpu_hours"], 1) == 4.0
    assert "about 4.0 GPU-hours" in (ROOT / "docs/results/README.md").read_text()
    # a check file without the reference's batch size is refused with the command that would measure it
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"roberta-base cells": {"batch 32": {}}}))
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks/estimate_reference_cost.py"),
                          "--study", str(ROOT / "docs/results/minilm-size-sweep"), "--gpu-check", str(partial)],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "--batch-sizes 16" in bad.stderr


@pytest.mark.slow
def test_attention_quality_script_pairs_sdpa_against_eager_runs(tiny_bert, tmp_path):
    """Each arm must run what it names (the script checks every run's metrics.json), and the files say so."""
    import json

    from finetune_compare.config import config_to_yaml

    from tests.conftest import tiny_config

    config = tmp_path / "tiny.yaml"
    config.write_text(config_to_yaml(tiny_config(tiny_bert, tmp_path, num_epochs=1)))
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks/attention_quality.py"), "--seeds", "3", "--methods",
                          "lora", "--config", str(config), "--output-dir", str(tmp_path / "runs"),
                          "--results-dir", str(tmp_path / "results")],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads((tmp_path / "results" / "attention-quality.json").read_text())
    lora = result["methods"]["lora"]
    assert lora["seeds"] == [7, 8, 9] and set(lora["macro_f1"]) == {"eager", "sdpa"}
    assert lora["verdict"]["text"] in (tmp_path / "results" / "attention-quality.md").read_text()
    for arm in ("eager", "sdpa"):
        metrics = json.loads((tmp_path / "runs" / arm / "runs" / "lora" / "seed-7" / "metrics.json").read_text())
        assert metrics["params"]["training_attention"] == arm


@pytest.mark.slow
def test_gives_up_simulation_script_runs(tmp_path):
    """The script behind docs/statistics.md's gives-up table, on two folders; it resumes from its output file."""
    import json

    argv = [sys.executable, str(ROOT / "benchmarks/simulate_gives_up.py"), "--reps", "2", "--power-reps", "0",
            "--scenarios", "test-noise", "--out", str(tmp_path / "gu.json")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cell = json.loads((tmp_path / "gu.json").read_text())["cells"]["test-noise/0"]
    assert cell["reps"] == 2 and set(cell["detected"]) >= {"in_domain", "out_of_domain", "macro_f1_tweeteval"}
    assert "| test-noise | +0.0000 (0 pair-SD) | 2 |" in (tmp_path / "gu.md").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "detected" not in again.stdout.split("Held out")[0]  # nothing rerun


@pytest.mark.slow
def test_many_methods_simulation_script_runs(tmp_path):
    """The script behind docs/statistics.md's many-methods table, on two folders; it resumes from its output file."""
    import json

    argv = [sys.executable, str(ROOT / "benchmarks/simulate_many_methods.py"), "--reps", "2", "--effects", "0",
            "--scenarios", "test-noise", "--out", str(tmp_path / "mm.json")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    cell = json.loads((tmp_path / "mm.json").read_text())["cells"]["test-noise/0"]
    assert cell["reps"] == 2 and set(cell["in_set"]) == {"full", "m1", "m2", "m3"}
    # Holm claims anything exactly when its first step (at 0.05/3, as Bonferroni) does: the same any-claim rate
    assert cell["any_false_claim_holm"] == cell["any_false_claim_bonferroni"]
    assert "| test-noise | all 4 equal | 2 |" in (tmp_path / "mm.md").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "any false claim" not in again.stdout.split("4 methods")[0]  # nothing rerun
