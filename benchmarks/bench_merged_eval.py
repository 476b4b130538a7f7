"""Inference speed: full model vs LoRA (adapter applied on the fly) vs LoRA merged into the weights.

    python benchmarks/bench_merged_eval.py

Same plain loop for every model (no_grad, bf16 autocast where supported, batch 64, 64 tokens),
RoBERTa-base-sized (random weights) and MiniLM; the second of two passes is timed.
Writes benchmarks/results/merged_eval.md.
"""

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, RobertaConfig, RobertaForSequenceClassification  # noqa: E402

from finetune_compare.config import MethodConfig  # noqa: E402
from finetune_compare.methods import get_method  # noqa: E402
from finetune_compare.models.resolve import embedded_minilm_path  # noqa: E402
from finetune_compare.training.device import cpu_supports_bf16  # noqa: E402
from finetune_compare.logging_setup import setup_logging  # noqa: E402

BATCH, TOKENS, REPEATS = 64, 64, 5


def make(kind: str):
    torch.manual_seed(0)
    if kind == "minilm":
        return AutoModelForSequenceClassification.from_pretrained(str(embedded_minilm_path()), num_labels=3,
                                                                  ignore_mismatched_sizes=True)
    return RobertaForSequenceClassification(RobertaConfig(num_labels=3))


def samples_per_second(model) -> float:
    model.eval()
    x = torch.randint(5, 20000, (BATCH, TOKENS))
    mask = torch.ones_like(x)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if cpu_supports_bf16() else nullcontext()
    with torch.no_grad(), amp:
        model(input_ids=x, attention_mask=mask)
        start = time.perf_counter()
        for _ in range(REPEATS):
            model(input_ids=x, attention_mask=mask)
    return BATCH * REPEATS / (time.perf_counter() - start)


def main():
    setup_logging("WARNING")
    rows = []
    for kind in ("roberta-base-random", "minilm"):
        full = samples_per_second(make(kind))
        lora = get_method("lora").make_trainable(make(kind), MethodConfig(lora_r=8, lora_target_modules=["query", "value"]),
                                                ["classifier"])
        unmerged = samples_per_second(lora)
        merged = samples_per_second(lora.merge_and_unload())
        rows.append({"model": kind, "full": full, "lora_unmerged": unmerged, "lora_merged": merged})
        print(json.dumps(rows[-1]))
    lines = [f"Inference, batch {BATCH} x {TOKENS} tokens, {'bf16 autocast' if cpu_supports_bf16() else 'fp32'}, "
             f"{torch.get_num_threads()} threads (samples/s):", "",
             "| model | full | LoRA (unmerged) | LoRA merged | merged / full |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['full']:.1f} | {r['lora_unmerged']:.1f} | {r['lora_merged']:.1f} | "
              f"{r['lora_merged'] / r['full']:.2f}x |" for r in rows]
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "merged_eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
