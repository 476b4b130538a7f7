"""Side-by-side training benchmark: naive loop vs plain Trainer vs this project's default path.

    python benchmarks/bench_training.py            # full: RoBERTa-base-sized (random) + MiniLM, ~20 min on 2 cores
    python benchmarks/bench_training.py --quick    # MiniLM only, short runs, ~3 min
    python benchmarks/bench_merged_eval.py         # inference: full vs LoRA vs LoRA merged

Variants (same data, same model, same batch size 16, max_length 128; LoRA is the same adapter in all three:
rank 8 on query/value with the project's alpha and dropout):
  a  naive: every batch padded to max_length, random order, fp32, a plain PyTorch loop
  b  plain transformers Trainer + peft, library defaults otherwise: dynamic padding, random order, fp32
  c  this project's default: length-grouped shuffled batches, dynamic padding, in the precision
     `mixed_precision: auto` chooses (the same Trainer path `--mode compare` uses). It runs in both
     precisions, c-fp32 and c-bf16; "c" in the ratios is the one auto chose on this machine, by its
     probe (training/precision_probe.py), whose measured ratio is printed beside it

Each (model, method, variant) cell runs in its own process, so its peak RSS is its own.
Timing excludes the first 2 optimizer steps (warm-up). FLOPs use the usual estimate
per token and layer (forward: 2 x weights + 4 x seq_len x hidden for attention; training:
3x forward for full fine-tuning, 2x for frozen-weight LoRA: no weight gradients) on the
*padded* shapes, i.e. what the hardware executed; tokens/s count real (non-pad) tokens.
Quality: validation macro-F1 after the short run (MiniLM; a random model has none to show).
Writes benchmarks/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"
BATCH = 16
MAX_LENGTH = 128


# ----------------------------------------------------------------------------------------
# helpers used inside a cell process
# ----------------------------------------------------------------------------------------

def _setup_env():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from finetune_compare.logging_setup import setup_logging

    setup_logging("WARNING")


def matmul_peak_gflops(dtype_name: str, n: int = 2048, seconds: float = 3.0) -> float:
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def build_data(quick: bool):
    from finetune_compare import Config
    from finetune_compare.data.build import build_data as build

    data_dir = os.environ.get("FINETUNE_COMPARE_DATA_DIR")
    per_class = 250 if quick else 700
    if data_dir:
        cfg = Config(data_source="local", data_dir=data_dir, samples_per_class=per_class, test_samples_per_class=50)
    else:
        cfg = Config(data_source="embedded", samples_per_class=min(per_class, 450), test_samples_per_class=50)
    return cfg, build(cfg.data, cfg.seed)


def load_model(model_key: str, tokenizer):
    import torch
    from transformers import AutoModelForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

    from finetune_compare.models.resolve import embedded_minilm_path

    torch.manual_seed(0)
    if model_key == "minilm":
        return AutoModelForSequenceClassification.from_pretrained(str(embedded_minilm_path()), num_labels=3,
                                                                  ignore_mismatched_sizes=True)
    # RoBERTa-base dimensions, random weights: time does not depend on the values
    cfg = RobertaConfig(vocab_size=tokenizer.vocab_size, num_labels=3, pad_token_id=tokenizer.pad_token_id,
                        max_position_embeddings=MAX_LENGTH + 2 + tokenizer.pad_token_id)
    return RobertaForSequenceClassification(cfg)


def apply_method(model, method: str, ours: bool):
    if method == "full":
        return model
    from finetune_compare.config import MethodConfig

    # one adapter for every variant (rank 8 on query/value, the project's alpha and dropout): the variants
    # differ in the training path only. peft's own defaults (alpha 8, no dropout) would be a different model,
    # and a cheaper one to train: dropout masks are a large share of a step on CPU, so (c) would pay for
    # regularisation (a)/(b) skip.
    lora = MethodConfig(lora_r=8, lora_target_modules=["query", "value"])
    if ours:
        from finetune_compare.methods import get_method

        return get_method("lora").make_trainable(model, lora, ["classifier"])
    from peft import LoraConfig, TaskType, get_peft_model  # plain peft, as a plain project would

    return get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=lora.lora_r, lora_alpha=lora.lora_alpha,
                                            lora_dropout=lora.lora_dropout,
                                            target_modules=list(lora.lora_target_modules)))


def flops_per_batch(model_cfg, method: str, batch: int, seq: int) -> float:
    d, layers, ffn = model_cfg.hidden_size, model_cfg.num_hidden_layers, model_cfg.intermediate_size
    weights = layers * (4 * d * d + 2 * d * ffn)  # attention projections + feed-forward
    forward = batch * seq * (2 * weights + layers * 4 * seq * d)
    return forward * (3 if method == "full" else 2)


class CountingCollator:
    """Dynamic or fixed padding, counting real and padded tokens of every batch."""

    def __init__(self, tokenizer, fixed_length: int | None):
        from transformers import DataCollatorWithPadding

        kwargs = {"padding": "max_length", "max_length": fixed_length} if fixed_length else {}
        self.inner = DataCollatorWithPadding(tokenizer, **kwargs)
        self.real = self.padded = 0
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, features):
        batch = self.inner(features)
        mask = batch["attention_mask"]
        self.real += int(mask.sum())
        self.padded += mask.numel()
        self.shapes.append(tuple(mask.shape))
        return batch


def run_cell(spec: dict) -> dict:
    _setup_env()
    import numpy as np
    import torch
    from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from finetune_compare.data.tokenization import tokenize_bundle
    from finetune_compare.models.resolve import embedded_minilm_path
    from finetune_compare.evaluation.metrics import classification_metrics
    from finetune_compare.training.trainer import ExperimentTrainer, build_training_args
    model_key, method, variant, quick = spec["model"], spec["method"], spec["variant"], spec["quick"]
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    cfg, bundle = build_data(quick)
    tok = tokenize_bundle(bundle, tokenizer, MAX_LENGTH)
    train_ds, val_ds = tok.train.dataset, tok.validation.dataset
    import psutil

    from finetune_compare.models.frozen_weights import frozen_weights_dtype, store_frozen_weights

    baseline_rss = psutil.Process().memory_info().rss  # Python, libraries, data: before the model exists
    base = load_model(model_key, tokenizer)
    if variant.startswith("c"):
        from finetune_compare.models.attention import use_training_attention

        use_training_attention(base, "cpu")  # (c) eager attention under dropout, as the project trains on CPU
    model = apply_method(base, method, ours=variant.startswith("c"))
    precision = "bf16" if variant == "c-bf16" else "no"
    base_dtype = frozen_weights_dtype("auto", method, precision) if variant.startswith("c") else "fp32"
    store_frozen_weights(model, base_dtype)  # (c) LoRA under bf16: the frozen base in bf16, as the project trains
    # one short epoch must move the metric: MiniLM takes higher rates than RoBERTa-base (LoRA ~10x full)
    lr = 1e-3 if method == "lora" else 1e-4
    max_steps = spec["max_steps"]  # None: one epoch
    steps = max_steps or math.ceil(len(train_ds) / BATCH)
    collator = CountingCollator(tokenizer, MAX_LENGTH if variant == "a" else None)

    times: dict = {}
    if variant == "a":
        from torch.utils.data import DataLoader
        from transformers import get_linear_schedule_with_warmup

        g = torch.Generator().manual_seed(0)
        loader = DataLoader(train_ds, batch_size=BATCH, shuffle=True, generator=g, collate_fn=collator)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
        sched = get_linear_schedule_with_warmup(opt, int(0.06 * steps), steps)
        model.train()
        done = 0
        for batch in loader:
            if done == 2:
                times["start"] = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            done += 1
            if done >= steps:
                break
        times["end"] = time.perf_counter()
        train_real, train_padded = collator.real, collator.padded
        model.eval()
        eval_collator = CountingCollator(tokenizer, MAX_LENGTH)
        for _ in range(2):  # time the second pass, as for the Trainer variants
            preds, start = [], time.perf_counter()
            with torch.no_grad():
                for batch in DataLoader(val_ds, batch_size=64, collate_fn=eval_collator):
                    preds.append(model(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1).numpy())
            eval_seconds = time.perf_counter() - start
        preds = np.concatenate(preds)
    else:
        class Timer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                if state.global_step == 2:
                    times["start"] = time.perf_counter()

            def on_train_end(self, args, state, control, **kw):
                times["end"] = time.perf_counter()

        if variant == "b":
            args = TrainingArguments(output_dir=str(RESULTS / "tmp"), per_device_train_batch_size=BATCH,
                                     per_device_eval_batch_size=64, learning_rate=lr, num_train_epochs=1,
                                     max_steps=max_steps or -1, report_to="none", use_cpu=True, save_strategy="no",
                                     eval_strategy="no", disable_tqdm=True, seed=0)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=collator,
                              callbacks=[Timer()])
        else:
            from dataclasses import replace

            args = build_training_args(cfg.replace(batch_size=BATCH, num_epochs=1).training, lr, 0, RESULTS / "tmp",
                                       len(train_ds), precision, "cpu")
            args = replace(args, eval_strategy="no", max_steps=max_steps or -1, learning_rate=lr)
            trainer = ExperimentTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collator,
                                        callbacks=[Timer()], train_lengths=tok.train.lengths, batch_grouping="length")
        trainer.train()
        train_real, train_padded = collator.real, collator.padded  # before evaluation adds its batches
        out, eval_seconds = _timed_predict(trainer, val_ds)  # (c): validation is length-sorted, bf16
        preds = out.predictions.argmax(-1)
    train_seconds = times["end"] - times["start"]
    shapes = collator.shapes[2:steps]  # the batches of the timed steps
    result = {
        **spec,
        "precision": precision,
        "steps_timed": len(shapes),
        "train_samples_per_second": sum(b for b, _ in shapes) / train_seconds,
        "padding_fraction": 1 - train_real / train_padded,
        "executed_gflops_per_second": sum(flops_per_batch(_base_config(model), method, b, t) for b, t in shapes)
        / train_seconds / 1e9,
        "eval_samples_per_second": len(val_ds) / eval_seconds,
        "val_macro_f1": classification_metrics([e.label for e in tok.validation.examples], preds)["macro_f1"],
    }
    # real tokens/s over the timed steps: collator counts every batch; scale by the timed share
    real_per_sample = train_real / max(1, sum(b for b, _ in collator.shapes[:steps]))
    result["train_real_tokens_per_second"] = result["train_samples_per_second"] * real_per_sample
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_above_baseline_mb"] = result["peak_rss_mb"] - baseline_rss / 2**20
    result["base_weights_dtype"] = base_dtype
    return result


def _timed_predict(trainer, dataset):
    """Second of two passes: the first pays one-off costs (allocator, kernel selection)."""
    trainer.predict(dataset)
    start = time.perf_counter()
    out = trainer.predict(dataset)
    return out, time.perf_counter() - start


def _base_config(model):
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.config


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------

def plan(quick: bool) -> list[dict]:
    cells = []
    models = [("minilm", None)] if quick else [("roberta-base-random", 12), ("minilm", None)]
    for model, max_steps in models:
        for method in ("full", "lora"):
            for variant in ("a", "b", "c-fp32", "c-bf16"):
                cells.append({"model": model, "method": method, "variant": variant, "quick": quick,
                              "max_steps": (12 if quick else max_steps) if model != "minilm" or quick else None})
    return cells


def auto_choices(models: list[str]) -> dict:
    """What mixed_precision auto chooses for each model on this machine, at the benchmark's batch shape, and why."""
    from finetune_compare.training.device import choose_precision

    shapes = {"minilm": (384, 1536), "roberta-base-random": (768, 3072)}
    return {m: choose_precision("auto", "cpu", (*shapes[m], BATCH * MAX_LENGTH)) for m in models}


def markdown(results: list[dict], peaks: dict, machine: str, choices: dict) -> str:
    lines = [f"Machine: {machine}. Matmul peak measured in this run: fp32 {peaks['fp32']:.0f} GFLOP/s, "
             f"bf16 {peaks['bf16']:.0f} GFLOP/s.", "",
             *(f"mixed_precision auto for {m}: {'bf16' if c.precision == 'bf16' else 'fp32'} ({c.reason}; probe fp32 "
               f"{c.fp32_ms} ms, bf16 {c.bf16_ms} ms)." if c.fp32_ms is not None else
               f"mixed_precision auto for {m}: {'bf16' if c.precision == 'bf16' else 'fp32'} ({c.reason})."
               for m, c in choices.items()), "",
             "| model | method | variant | precision | train samples/s | real tokens/s | padding | GFLOP/s (% of peak) "
             "| eval samples/s | peak RSS MB | RSS above baseline MB | val macro-F1 |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        peak = peaks["bf16" if r["precision"] == "bf16" else "fp32"]
        eval_txt = f"{r['eval_samples_per_second']:.1f}"
        f1 = f"{r['val_macro_f1']:.3f}" if r["model"] == "minilm" else "n/a (random weights)"
        lines.append(
            f"| {r['model']} | {r['method']} | {r['variant']} | {r['precision']} | {r['train_samples_per_second']:.2f} | "
            f"{r['train_real_tokens_per_second']:.0f} | {r['padding_fraction']:.0%} | "
            f"{r['executed_gflops_per_second']:.0f} ({r['executed_gflops_per_second'] / peak:.0%}) | {eval_txt} | "
            f"{r['peak_rss_mb']:.0f} | {r.get('rss_above_baseline_mb', float('nan')):.0f} | {f1} |")
    lines += ["", "Ratios (training samples/s):"]
    by = {(r["model"], r["method"], r["variant"]): r for r in results}
    for model in dict.fromkeys(r["model"] for r in results):
        auto = "c-bf16" if choices[model].precision == "bf16" else "c-fp32"
        other = "c-fp32" if auto == "c-bf16" else "c-bf16"
        for method in ("full", "lora"):
            a, b, c, o = (by.get((model, method, v)) for v in ("a", "b", auto, other))
            if a and b and c:
                lines.append(f"- {model} {method}: c/a = {c['train_samples_per_second'] / a['train_samples_per_second']:.2f}x, "
                             f"c/b = {c['train_samples_per_second'] / b['train_samples_per_second']:.2f}x (c = {auto}, "
                             "auto's choice"
                             + (f"; {other} would give c/a {o['train_samples_per_second'] / a['train_samples_per_second']:.2f}x"
                                if o else "") + f"); macro-F1 a {a['val_macro_f1']:.3f}, b {b['val_macro_f1']:.3f}, "
                             f"c {c['val_macro_f1']:.3f}")
        full, lora = by.get((model, "full", auto)), by.get((model, "lora", auto))
        if full and lora:
            lines.append(f"- {model} LoRA vs full (variant c): training {lora['train_samples_per_second'] / full['train_samples_per_second']:.2f}x, "
                         f"peak RSS {lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}x, RSS above the pre-model "
                         f"baseline {lora['rss_above_baseline_mb'] / full['rss_above_baseline_mb']:.2f}x "
                         f"(LoRA's frozen base in {lora.get('base_weights_dtype', 'fp32')}) "
                         "(merged-adapter evaluation: benchmarks/bench_merged_eval.py)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="MiniLM only, short runs (~3 min)")
    parser.add_argument("--cell", help=argparse.SUPPRESS)  # internal: run one cell, print JSON
    parser.add_argument("--models", help="comma list of cells' models to run (minilm, roberta-base-random)")
    parser.add_argument("--variants", help="comma list of variants to run (a, b, c-fp32, c-bf16)")
    args = parser.parse_args()
    if args.cell:
        print("RESULT " + json.dumps(run_cell(json.loads(args.cell))))
        return
    _setup_env()
    import torch

    RESULTS.mkdir(parents=True, exist_ok=True)
    peaks = {"fp32": matmul_peak_gflops("fp32"), "bf16": matmul_peak_gflops("bf16")}
    results = []
    cells = [c for c in plan(args.quick) if (not args.models or c["model"] in args.models.split(","))
             and (not args.variants or c["variant"] in args.variants.split(","))]
    choices = auto_choices(list(dict.fromkeys(c["model"] for c in cells)))
    for model, choice in choices.items():
        print(f"mixed_precision auto, {model}: {choice.reason}", flush=True)
    for spec in cells:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--cell", json.dumps(spec)], capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            print(f"cell {spec} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            sys.exit(1)
        r = json.loads(line[7:])
        results.append(r)
        print(f"{r['model']:<20} {r['method']:<5} {r['variant']:<6}  {r['train_samples_per_second']:7.2f} samples/s  "
              f"pad {r['padding_fraction']:.0%}  F1 {r['val_macro_f1']:.3f}  RSS {r['peak_rss_mb']:.0f} MB  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    machine = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    data = {"machine": machine, "matmul_peak_gflops": peaks, "quick": args.quick, "results": results,
            "mixed_precision_auto": {m: vars(c) for m, c in choices.items()},
            "data": os.environ.get("FINETUNE_COMPARE_DATA_DIR") or "embedded sample"}
    name = "latest-quick" if args.quick else "latest"
    if args.models or args.variants:
        name += "-" + "-".join(filter(None, [args.models, args.variants])).replace(",", "+")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2))
    table = markdown(results, peaks, machine, choices)
    if args.quick:
        table += ("\nQuick mode trains ~40 steps: its macro-F1 is near chance for every variant and says nothing "
                  "about quality; the full run (one epoch on 1,892 examples) is the quality check.\n")
    (RESULTS / f"{name}.md").write_text(table)
    print("\n" + table)


if __name__ == "__main__":
    main()
