"""The on-demand scripts stay runnable: the GPU check's CPU smoke mode, the decision-rule simulation."""

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
    assert "ok    tiny compare" in smoke.stdout and "1 of 1 checks passed" in smoke.stdout
    if not torch.cuda.is_available():
        gpu = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py")], capture_output=True, text=True)
        assert gpu.returncode == 2 and gpu.stderr.startswith("error: no CUDA device visible")


def test_decision_rule_simulation_script_runs():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/simulate_decision_rule.py"), "--reps", "40"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"after-5"' in out.stdout
