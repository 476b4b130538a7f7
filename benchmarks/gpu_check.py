"""GPU check: the CUDA paths a CPU machine cannot exercise, in under 5 minutes on one GPU.

    python benchmarks/gpu_check.py               # on a CUDA machine; writes benchmarks/results/gpu-check.json
    python benchmarks/gpu_check.py --device cpu  # smoke test of the script itself (tiny, no CUDA claims)

1. a tiny comparison (random 2-layer BERT, embedded data) in bf16 and in fp16: both finish, metrics.json
   records the precision, the frozen-base dtype and the peak CUDA memory;
2. gpu_memory_fraction: a cap of 5% is applied (an allocation above it fails, one below succeeds);
3. OOM retry: a RoBERTa-base-sized model at batch 64 under a small memory fraction, with oom_retry on:
   the log shows the batch halved (and accumulation doubled) until the run fits;
4. RoBERTa-base-sized cells (random weights), full vs LoRA (bf16 and fp32 frozen base) on this project's
   Trainer path in bf16, at batch 16 (the default), 32 and 128, each timed twice in rotating order:
   samples/s, ms per step, GFLOP/s as a share of a bf16 matmul peak measured in the same run, peak CUDA
   memory; plus one forward + backward outside the Trainer (its time, dtype casts and GPU kernels),
   which separates the model's cost from the Trainer's per-step overhead.
The report also records what `device: auto` and `mixed_precision: auto` resolve to on this machine.
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

    from finetune_compare.utils.memory import release_memory

    release_memory()  # earlier steps' cached blocks would count against the cap
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(0.05)
    try:
        small = torch.empty(int(total * 0.02) // 4, dtype=torch.float32, device="cuda")
        below_ok = True
        del small
    except torch.cuda.OutOfMemoryError:
        below_ok = False
    try:
        torch.empty(int(total * 0.10) // 4, dtype=torch.float32, device="cuda")
        above_refused = False
    except torch.cuda.OutOfMemoryError:
        above_refused = True
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        release_memory()
    if not (below_ok and above_refused):
        raise RuntimeError(f"memory fraction 0.05 not applied: 2% allocation ok={below_ok}, "
                           f"10% allocation refused={above_refused}")
    return {"fraction": 0.05, "2%_allocation_ok": below_ok, "10%_allocation_refused": above_refused}


def oom_retry_check(work: Path) -> dict:
    import logging

    from finetune_compare import Config
    from finetune_compare.experiments.execution.context import prepare_context
    from finetune_compare.experiments.execution.run import run_method

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
    # RoBERTa-base full fine-tuning: ~1.8 GB of fp32 weights, gradients and AdamW states, plus ~3 GB of bf16
    # activations at batch 64 x 128 tokens; a 3 GB cap leaves room for batch 16 at most
    fraction = min(0.9, 3.0 / total_gb)
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
    if not retries:
        raise RuntimeError(f"batch 64 fit under a memory fraction of {fraction:.3f}: the retry was not exercised")
    return {"fraction": round(fraction, 3), "retries": retries, "finished": finished,
            "peak_cuda_mb": metrics.memory["peak_cuda_mb"] if metrics else None}


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


# (cell name, method, base_weights_dtype): LoRA is timed with the default bf16 base and with an fp32 one
CELLS = (("full", "full", "auto"), ("lora", "lora", "auto"), ("lora, fp32 base", "lora", "fp32"))


def _sync(device: str):
    """Waits for the GPU's queued work (timings must not stop before the kernels do); nothing to wait for on CPU."""
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def profile_step(model, batch: dict, device: str, precision: str) -> dict:
    """One forward + backward outside the Trainer: its time, and how many dtype casts and GPU kernels it runs.

    Separates what the model costs from the Trainer's per-step overhead, and shows whether a bf16 base
    removes the per-step weight casts that autocast does for fp32 frozen weights."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    model.train()
    batch = {k: v.to(device) for k, v in batch.items()}
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    sync = _sync(device)

    def step():
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    sync()
    start, n = time.perf_counter(), 10
    for _ in range(n):
        step()
    sync()
    ms = (time.perf_counter() - start) / n * 1000
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync()
    events = prof.key_averages()
    return {"forward_backward_ms": round(ms, 2),
            "dtype_casts": sum(e.count for e in events if e.key == "aten::_to_copy"),
            "gpu_kernels": sum(e.count for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
            if device == "cuda" else None,
            "batch_shape": list(batch["input_ids"].shape)}


def roberta_cells(work: Path, device: str = "cuda", steps: int = 60, batch_sizes: tuple[int, ...] = (32,),
                  repeats: int = 1) -> dict:
    """Full vs LoRA on this project's Trainer path (bf16, length-grouped batches), RoBERTa-base size.

    Cells run in rotating order, `repeats` times each, so a slow moment of the machine does not land on one
    method. On CPU (the smoke test) a tiny model runs a few steps: it checks this code, not the figures."""
    import dataclasses
    import statistics

    import torch
    from transformers import TrainerCallback

    from finetune_compare import Config
    from finetune_compare.experiments.execution.context import prepare_context
    from finetune_compare.methods import get_method
    from finetune_compare.models.frozen_weights import frozen_weights_dtype, store_frozen_weights
    from finetune_compare.training.trainer import build_trainer, build_training_args
    from finetune_compare.utils.memory import release_memory

    cuda = device == "cuda"
    if cuda:
        folder = work / "roberta-base-random"
        _roberta_base(folder)
        d, layers, ffn = 768, 12, 3072
    else:
        folder = work / "tiny-cells"
        tiny_model(folder)
        d, layers, ffn = 64, 2, 128
    sync = _sync(device)
    cfg = Config(model_name=str(folder), data_source="embedded", samples_per_class=400 if cuda else 70,
                 test_samples_per_class=20, max_length=128, batch_size=min(batch_sizes), device=device,
                 mixed_precision="bf16" if cuda else "no", output_dir=str(work / "cells"), tracking_mlflow=False,
                 tracking_wandb=False, methods=["full", "lora"])
    ctx = prepare_context(cfg)
    peak = bf16_matmul_peak(device) if cuda else None
    out: dict = {"model": "roberta-base-random" if cuda else "tiny (smoke test)", "timed_steps": steps - 5,
                 "repeats": repeats, "bf16_matmul_peak_gflops": round(peak) if peak else None}

    def run_cell(method: str, setting: str, batch_size: int, profile: bool) -> dict:
        release_memory()  # the previous cell's model and optimizer must not count in this one's peak
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        training = cfg.replace(batch_size=batch_size).training
        base = ctx.provider.load_model()
        head = ctx.provider.head_module_names(base)
        model = get_method(method).make_trainable(base, cfg.method, head)
        base_dtype = frozen_weights_dtype(setting, method, ctx.precision)
        store_frozen_weights(model, base_dtype)
        args = build_training_args(training, cfg.learning_rate_for(method), 0, Path(cfg.output_dir) / method,
                                   len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
        args = dataclasses.replace(args, max_steps=steps, eval_strategy="no", save_strategy="no")
        shapes, times = [], {}

        class Clock(TrainerCallback):
            def on_step_begin(self, a, state, control, **kw):
                if state.global_step == 5:  # after warm-up: allocator, kernels and autotuning settled
                    sync()
                    times["start"] = time.perf_counter()

            def on_train_end(self, a, state, control, **kw):
                sync()
                times["end"] = time.perf_counter()

        trainer = build_trainer(training, model, ctx.tokenizer, args, ctx.tokenized.train, None, [Clock()], head,
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
        # matmul FLOPs of the padded shapes run: linear layers (2 per weight per token) and attention scores/mix
        flops = sum(b * t * (2 * layers * (4 * d * d + 2 * d * ffn) + layers * 4 * t * d) for b, t in timed)
        flops *= 3 if method == "full" else 2  # frozen weights skip the weight-gradient matmuls
        cell = {"samples_per_second": sum(b for b, _ in timed) / seconds, "gflops_per_second": flops / seconds / 1e9,
                "mean_tokens_per_row": sum(t for _, t in timed) / max(len(timed), 1),
                "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
                "base_weights_dtype": base_dtype}
        if profile:
            trainer.data_collator = collate
            cell["one_step_outside_the_trainer"] = profile_step(
                model, next(iter(trainer.get_train_dataloader())), device, ctx.precision)
        del trainer, model, base
        return cell

    for batch_size in batch_sizes:
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in CELLS}
        for rep in range(repeats):
            order = CELLS[rep % len(CELLS):] + CELLS[:rep % len(CELLS)]  # rotate who goes first
            for name, method, setting in order:
                runs[name].append(run_cell(method, setting, batch_size, profile=rep == 0))
        group: dict = {}
        for name, cells in runs.items():
            speeds = [c["samples_per_second"] for c in cells]
            speed = statistics.median(speeds)
            gflops = statistics.median(c["gflops_per_second"] for c in cells)
            first = cells[0]
            group[name] = {
                "samples_per_second": round(speed, 1),
                "ms_per_step": round(batch_size / speed * 1000, 1),
                "samples_per_second_each_repeat": [round(v, 1) for v in speeds],
                "gflops_per_second": round(gflops),
                "share_of_matmul_peak": round(gflops / peak, 3) if peak else None,
                "mean_tokens_per_row": round(first["mean_tokens_per_row"], 1),
                "peak_cuda_mb": first["peak_cuda_mb"], "base_weights_dtype": first["base_weights_dtype"],
                "one_step_outside_the_trainer": first.get("one_step_outside_the_trainer")}
        ratio = {"speed": round(group["lora"]["samples_per_second"] / group["full"]["samples_per_second"], 2),
                 "speed_fp32_base": round(group["lora, fp32 base"]["samples_per_second"]
                                          / group["full"]["samples_per_second"], 2)}
        if cuda:
            ratio["peak_cuda_memory"] = round(group["lora"]["peak_cuda_mb"] / group["full"]["peak_cuda_mb"], 2)
            ratio["peak_cuda_memory_fp32_base"] = round(group["lora, fp32 base"]["peak_cuda_mb"]
                                                        / group["full"]["peak_cuda_mb"], 2)
        group["lora_vs_full"] = ratio
        out[f"batch {batch_size}"] = group
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for gpu-check.json")
    parser.add_argument("--batch-sizes", type=lambda v: tuple(int(x) for x in v.split(",")), default=(16, 32, 128),
                        help="training batch sizes of the RoBERTa-base cells (comma-separated)")
    parser.add_argument("--repeats", type=int, default=2, help="times each cell is timed, in rotating order")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device visible (torch.cuda.is_available() is false); run on a GPU machine, "
              "or --device cpu for a smoke test of this script", file=sys.stderr)
        return 2
    from finetune_compare.logging_setup import setup_logging

    setup_logging("WARNING")
    from finetune_compare.training.device import resolve_device, resolve_precision

    auto_device = resolve_device("auto")
    report: dict = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
                    "torch": torch.__version__, "device_auto": auto_device,
                    "mixed_precision_auto": resolve_precision("auto", auto_device)}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    steps = [("tiny compare bf16", lambda: tiny_compare(args.device, "bf16" if args.device == "cuda" else "no", work))]
    if args.device == "cuda":
        steps += [("tiny compare fp16", lambda: tiny_compare("cuda", "fp16", work)),
                  ("gpu_memory_fraction", memory_fraction_check),
                  ("oom retry", lambda: oom_retry_check(work)),
                  ("roberta-base cells", lambda: roberta_cells(work, batch_sizes=args.batch_sizes,
                                                               repeats=args.repeats))]
    else:
        steps += [("training cells (tiny)", lambda: roberta_cells(work, "cpu", steps=8, batch_sizes=(4, 8)))]
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
        results = Path(args.out)
        results.mkdir(parents=True, exist_ok=True)
        (results / "gpu-check.json").write_text(json.dumps(report, indent=2))
    print(f"{len(steps) - failed} of {len(steps)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
