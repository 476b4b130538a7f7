"""GPU check: the CUDA paths a CPU machine cannot exercise, in under 5 minutes on one GPU.

    python benchmarks/gpu_check.py               # on a CUDA machine; writes benchmarks/results/gpu-check.{json,md}
    python benchmarks/gpu_check.py --device cpu  # smoke test of the script itself (tiny, no CUDA claims)

1. a tiny comparison (random 2-layer BERT, embedded data) in bf16 and in fp16: both finish, metrics.json
   records the precision, the frozen-base dtype and the peak CUDA memory;
2. gpu_memory_fraction: a cap of 5% is applied (an allocation above it fails, one below succeeds);
3. OOM retry: a RoBERTa-base-sized model at batch 64 under a small memory fraction, with oom_retry on:
   the log shows the batch halved (and accumulation doubled) until the run fits;
4. RoBERTa-base-sized cells (random weights), full vs LoRA on this project's Trainer path in bf16:
   samples/s, GFLOP/s as a share of a bf16 matmul peak measured in the same run, peak CUDA memory.
Every step prints one line; a failing step is reported and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def tiny_model(folder: Path) -> str:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from finetune_compare.models.resolve import embedded_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=130)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)


def tiny_compare(device: str, precision: str, work: Path) -> dict:
    from finetune_compare import ComparisonExperiment, Config

    cfg = Config(model_name=tiny_model(work / f"tiny-{precision}"), data_source="embedded", samples_per_class=70,
                 test_samples_per_class=20, max_length=64, num_epochs=1, num_runs=1, batch_size=16, device=device,
                 mixed_precision=precision, output_dir=str(work / f"cmp-{precision}"), tracking_mlflow=False,
                 tracking_wandb=False, learning_rate=1e-3, lora_learning_rate=3e-3)
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    out = {}
    for method in ("full", "lora"):
        m = json.loads((Path(cfg.output_dir) / "runs" / method / f"seed-{cfg.seed}" / "metrics.json").read_text())
        out[method] = {"precision": m["environment"]["precision"], "base_weights_dtype": m["params"]["base_weights_dtype"],
                       "peak_cuda_mb": m["memory"]["peak_cuda_mb"], "macro_f1": m["test"]["macro_f1"]}
    return out


def memory_fraction_check() -> dict:
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(0.05)
    small = torch.empty(int(total * 0.02) // 4, dtype=torch.float32, device="cuda")
    del small
    try:
        torch.empty(int(total * 0.10) // 4, dtype=torch.float32, device="cuda")
        refused = False
    except torch.cuda.OutOfMemoryError:
        refused = True
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()
    return {"fraction": 0.05, "2%_allocation_ok": True, "10%_allocation_refused": refused}


def oom_retry_check(work: Path) -> dict:
    import logging

    from finetune_compare import Config
    from finetune_compare.experiments.run import prepare_context, run_method

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    logging.getLogger("finetune_compare").addHandler(handler)
    folder = work / "roberta-base-random"
    _roberta_base(folder)
    import torch

    total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30
    # RoBERTa-base full fine-tuning at batch 64 x 128 tokens needs ~10 GB; cap the process at ~4 GB
    fraction = min(0.9, 4.0 / total_gb)
    cfg = Config(model_name=str(folder), data_source="embedded", samples_per_class=200, test_samples_per_class=20,
                 max_length=128, num_epochs=1, num_runs=1, batch_size=64, device="cuda", mixed_precision="bf16",
                 gpu_memory_fraction=fraction, oom_retry=True, output_dir=str(work / "oom"), tracking_mlflow=False,
                 tracking_wandb=False)
    try:
        metrics = run_method(prepare_context(cfg), "full", cfg.seed)
        finished = True
    except torch.cuda.OutOfMemoryError:
        metrics, finished = None, False
    finally:
        logging.getLogger("finetune_compare").removeHandler(handler)
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    retries = [r for r in records if "CUDA out of memory; retrying" in r]
    return {"fraction": round(fraction, 3), "retries": retries, "finished": finished,
            "peak_cuda_mb": metrics["memory"]["peak_cuda_mb"] if metrics else None}


def _roberta_base(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    from finetune_compare.models.resolve import embedded_minilm_path

    if (folder / "config.json").is_file():
        return
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    cfg = RobertaConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=130 + tokenizer.pad_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    RobertaModel(cfg).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def bf16_matmul_peak(device: str, n: int = 8192, seconds: float = 3.0) -> float:
    import torch

    a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def roberta_cells(work: Path, steps: int = 40) -> dict:
    """Full vs LoRA on this project's Trainer path (bf16, length-grouped batches), RoBERTa-base size."""
    import dataclasses

    import torch
    from transformers import TrainerCallback

    from finetune_compare import Config
    from finetune_compare.experiments.run import prepare_context
    from finetune_compare.models.methods import frozen_weights_dtype, get_method, store_frozen_weights
    from finetune_compare.training.trainer import build_trainer, build_training_args

    folder = work / "roberta-base-random"
    _roberta_base(folder)
    cfg = Config(model_name=str(folder), data_source="embedded", samples_per_class=400, test_samples_per_class=20,
                 max_length=128, batch_size=32, device="cuda", mixed_precision="bf16", output_dir=str(work / "cells"),
                 tracking_mlflow=False, tracking_wandb=False, methods=["full", "lora"])
    ctx = prepare_context(cfg)
    peak = bf16_matmul_peak("cuda")
    d, layers, ffn = 768, 12, 3072
    out = {"bf16_matmul_peak_gflops": round(peak)}
    for method in ("full", "lora"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = ctx.provider.load_model()
        head = ctx.provider.head_module_names(base)
        model = get_method(method).apply(base, cfg.method, head)
        store_frozen_weights(model, frozen_weights_dtype("auto", method, ctx.precision))
        args = build_training_args(cfg.training, cfg.learning_rate_for(method), 0, Path(cfg.output_dir) / method,
                                   len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
        args = dataclasses.replace(args, max_steps=steps, eval_strategy="no")
        shapes, times = [], {}

        class Clock(TrainerCallback):
            def on_step_begin(self, a, state, control, **kw):
                if state.global_step == 5:
                    torch.cuda.synchronize()
                    times["start"] = time.perf_counter()

            def on_train_end(self, a, state, control, **kw):
                torch.cuda.synchronize()
                times["end"] = time.perf_counter()

        trainer = build_trainer(cfg.training, model, ctx.tokenizer, args, ctx.tokenized.train, None, [Clock()], head,
                                head_learning_rate=cfg.head_lr)
        collate = trainer.data_collator

        def counting(features):
            batch = collate(features)
            shapes.append(tuple(batch["attention_mask"].shape))
            return batch

        trainer.data_collator = counting
        trainer.train()
        timed = shapes[5:steps]
        seconds = times["end"] - times["start"]
        flops = sum(b * t * (2 * layers * (4 * d * d + 2 * d * ffn) + layers * 4 * t * d) for b, t in timed)
        flops *= 3 if method == "full" else 2
        out[method] = {"samples_per_second": round(sum(b for b, _ in timed) / seconds, 1),
                       "gflops_per_second": round(flops / seconds / 1e9),
                       "share_of_matmul_peak": round(flops / seconds / 1e9 / peak, 3),
                       "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20),
                       "base_weights_dtype": frozen_weights_dtype("auto", method, ctx.precision)}
        del trainer, model, base
    out["lora_vs_full"] = {"speed": round(out["lora"]["samples_per_second"] / out["full"]["samples_per_second"], 2),
                           "peak_cuda_memory": round(out["lora"]["peak_cuda_mb"] / out["full"]["peak_cuda_mb"], 2)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device visible (torch.cuda.is_available() is false); run on a GPU machine, "
              "or --device cpu for a smoke test of this script", file=sys.stderr)
        return 2
    from finetune_compare.utils.logging import setup_logging

    setup_logging("WARNING")
    report: dict = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
                    "torch": torch.__version__}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    steps = [("tiny compare bf16", lambda: tiny_compare(args.device, "bf16" if args.device == "cuda" else "no", work))]
    if args.device == "cuda":
        steps += [("tiny compare fp16", lambda: tiny_compare("cuda", "fp16", work)),
                  ("gpu_memory_fraction", memory_fraction_check),
                  ("oom retry", lambda: oom_retry_check(work)),
                  ("roberta-base cells", lambda: roberta_cells(work))]
    failed = 0
    for name, step in steps:
        start = time.perf_counter()
        try:
            report[name] = step()
            print(f"ok    {name} ({time.perf_counter() - start:.0f} s): {json.dumps(report[name])}", flush=True)
        except Exception as exc:  # report and go on: one broken path must not hide the others
            failed += 1
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            print(f"FAIL  {name} ({time.perf_counter() - start:.0f} s): {type(exc).__name__}: {exc}", flush=True)
    if args.device == "cuda":
        results = ROOT / "benchmarks" / "results"
        results.mkdir(parents=True, exist_ok=True)
        (results / "gpu-check.json").write_text(json.dumps(report, indent=2))
    print(f"{len(steps) - failed} of {len(steps)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
