"""Estimate what configs/reference-sweep.yaml costs on a GPU, from measured numbers where we have them.

    python benchmarks/estimate_reference_cost.py --study docs/results/minilm-size-sweep
        [--gpu-peak-tflops 989] [--mfu 0.25] [--step-ms 35 | --gpu-check benchmarks/results/gpu-check.json]
        [--out FILE.json]

Measured here:
- this CPU's training throughput on MiniLM and the mean real tokens per training example, from the
  study's metrics.json files (samples/s and tokens/s per method, max_length 128 as in the reference);
- FLOPs of one training step (forward + backward) for MiniLM-L6 and RoBERTa-base (random weights, same
  architecture), full fine-tuning and LoRA r=8 on query/value, counted with torch.utils.flop_counter
  at that mean length.
Assumed (stated in the output): a GPU's bf16 peak and the share of it short-sequence encoder
training reaches (MFU), and a per-step latency floor (a small batch cannot fill a large GPU). With
--gpu-check, the floor is measured instead: each method's milliseconds per optimizer step at the
reference's batch size, from benchmarks/gpu_check.py's RoBERTa-base cells on a real GPU.
The estimate is the larger of the FLOP-bound and the step-bound figure. It is an estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def step_flops(model_kind: str, method: str, batch: int, seq: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoConfig, AutoModelForSequenceClassification, RobertaConfig

    from finetune_compare.config import MethodConfig
    from finetune_compare.methods import get_method
    from finetune_compare.models.resolve import embedded_minilm_path

    torch.manual_seed(0)
    if model_kind == "minilm":
        cfg = AutoConfig.from_pretrained(str(embedded_minilm_path()), num_labels=3)
    else:
        cfg = RobertaConfig(num_labels=3)  # RoBERTa-base dimensions (Twitter-RoBERTa's architecture)
    model = AutoModelForSequenceClassification.from_config(cfg)
    model = get_method(method).make_trainable(model, MethodConfig(), ["classifier"])
    ids = torch.randint(5, cfg.vocab_size - 1, (batch, seq))
    with FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.zeros(batch, dtype=torch.long))
        out.loss.backward()
    return float(counter.get_total_flops())


def study_throughput(study: Path) -> tuple[dict[str, float], float]:
    """Mean training samples/s per method over the study's runs (this CPU), and mean tokens per example.

    Reads each run's metrics.json; a published copy without run folders (docs/results) is read from its
    points' comparison.json instead, whose per-method means are weighted by their number of runs."""
    rates: dict[str, list[tuple[float, float]]] = {}  # method -> [(samples/s, weight)]
    tokens: list[tuple[float, float]] = []  # [(tokens per example, weight)]
    for path in study.rglob("runs/*/seed-*/metrics.json"):
        t = json.loads(path.read_text())
        rates.setdefault(t["method"], []).append((t["timing"]["train_samples_per_second"], 1.0))
        tokens.append((t["timing"]["train_tokens_per_second"] / t["timing"]["train_samples_per_second"], 1.0))
    if not tokens:
        for path in study.rglob("comparison.json"):
            c = json.loads(path.read_text())
            for method, e in c.get("efficiency", {}).items():
                n = float(e["train_seconds"]["n"])
                rates.setdefault(method, []).append((e["train_samples_per_second"], n))
                tokens.append((e["train_tokens_per_second"] / e["train_samples_per_second"], n))
    if not tokens:
        raise SystemExit(f"no finished runs under {study} (neither runs/*/seed-*/metrics.json nor comparison.json)")

    def mean(pairs):
        return sum(v * w for v, w in pairs) / sum(w for _, w in pairs)

    return {k: mean(v) for k, v in rates.items()}, mean(tokens)


def reference_examples():
    """({method: training examples processed by the reference sweep (epochs x seeds x sizes)}, its config)."""
    import yaml

    from finetune_compare.config import load_config

    cfg = load_config([ROOT / "configs/default.yaml", ROOT / "configs/reference-sweep.yaml"])
    sizes = yaml.safe_load((ROOT / "configs/reference-sweep.yaml").read_text())["sweep"]["samples_per_class"]
    train = sum(3 * s * (1 - cfg.val_fraction) for s in sizes)
    return {m: train * cfg.for_method(m).num_epochs * cfg.num_runs for m in cfg.methods}, cfg


def measured_step_ms(report: dict, path: Path, batch_sizes: dict[str, int]) -> dict[str, float]:
    """{method: ms per optimizer step} from gpu_check.py's RoBERTa-base cells at each method's batch size."""
    cells = report.get("roberta-base cells") or {}
    out = {}
    for method, batch in batch_sizes.items():
        cell = (cells.get(f"batch {batch}") or {}).get(method)
        if not cell or "ms_per_step" not in cell:
            raise SystemExit(f"{path}: no RoBERTa-base cell for {method} at batch {batch}; rerun "
                             f"benchmarks/gpu_check.py --batch-sizes {batch} on the GPU")
        out[method] = cell["ms_per_step"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", type=Path, required=True, help="a finished MiniLM study folder (its points/ runs)")
    p.add_argument("--gpu-peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100 SXM: 989)")
    p.add_argument("--mfu", type=float, default=0.25, help="assumed share of the peak reached")
    p.add_argument("--step-ms", type=float, default=35.0, help="assumed floor per optimizer step on the GPU")
    p.add_argument("--gpu-check", type=Path, help="gpu_check.py's JSON: measured ms per step replace --step-ms")
    p.add_argument("--out", type=Path, help="write the estimate as JSON here")
    a = p.parse_args()

    import torch

    torch.set_num_threads(1)
    cpu, tokens_per_example = study_throughput(a.study)
    examples, cfg = reference_examples()
    step_ms = {m: a.step_ms for m in examples}
    peak_tflops, gpu = a.gpu_peak_tflops, None
    if a.gpu_check:  # read before the FLOP counting, so a check without the needed cells fails at once
        gpu = json.loads(a.gpu_check.read_text())
        step_ms = measured_step_ms(gpu, a.gpu_check, {m: cfg.for_method(m).batch_size for m in examples})
        peak_gflops = (gpu.get("roberta-base cells") or {}).get("bf16_matmul_peak_gflops")
        peak_tflops = peak_gflops / 1000 if peak_gflops else peak_tflops
    seq, batch = int(round(tokens_per_example)), 16
    flops = {(k, m): step_flops(k, m, batch, seq) / batch for k in ("minilm", "roberta-base") for m in ("full", "lora")}
    out = {"measured": {"flops_per_training_example": {f"{k}/{m}": v for (k, m), v in flops.items()},
                        "cpu_minilm_train_samples_per_second": cpu, "tokens_per_example": tokens_per_example},
           "assumed": {"mfu": a.mfu},
           "reference_sweep": {}}
    if gpu:
        out["measured"].update({"gpu_ms_per_step": step_ms, "gpu_bf16_matmul_peak_tflops": peak_tflops,
                                "gpu": gpu.get("device"), "gpu_check": str(a.gpu_check)})
    else:
        out["assumed"].update({"gpu_peak_tflops": a.gpu_peak_tflops, "step_ms": a.step_ms})
    total_gpu_s = total_cpu_s = 0.0
    for m, n in examples.items():
        f = flops[("roberta-base", m)] * n
        cpu_s = n / cpu[m] * flops[("roberta-base", m)] / flops[("minilm", m)] if m in cpu else None
        flop_s = f / (peak_tflops * 1e12 * a.mfu)
        step_s = n / cfg.for_method(m).batch_size * step_ms[m] / 1000
        gpu_s = max(flop_s, step_s)
        total_gpu_s += gpu_s
        total_cpu_s += cpu_s or 0.0
        out["reference_sweep"][m] = {"training_examples": n, "training_flops": f,
                                     "gpu_hours_flop_bound": flop_s / 3600, "gpu_hours_step_bound": step_s / 3600,
                                     "gpu_hours": gpu_s / 3600, "this_cpu_hours": cpu_s / 3600 if cpu_s else None}
    out["reference_sweep"]["total_gpu_hours"] = total_gpu_s / 3600
    out["reference_sweep"]["total_this_cpu_hours"] = total_cpu_s / 3600
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
