"""Serving latency: full fine-tuning's model vs LoRA unmerged vs LoRA merged vs ONNX Runtime, batch 1 and 32.

    python benchmarks/bench_serving.py            # MiniLM (embedded weights) and a RoBERTa-base-shaped model
    python benchmarks/bench_serving.py --quick    # MiniLM only

The same code as `serving: true` (evaluation/serving.py: every form timed in the same interleaved rounds, forward
pass only, 32 embedded test texts up to 128 tokens, fp32) and as `export --onnx` (models/export.py). LoRA: r=8 on
query and value, as the quickstart. The RoBERTa-base-shaped model has random weights (no hub here): its speed is
the reference checkpoint's. Each model's forms are timed twice, as two independent measurements, to show how much
a ratio moves between repeats on this machine. Writes benchmarks/results/serving.md and serving.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from bench_merged_eval import make  # noqa: E402  (the same two models: MiniLM, and RoBERTa-base-shaped)

from finetune_compare.config import MethodConfig  # noqa: E402
from finetune_compare.data.loading import read_embedded  # noqa: E402
from finetune_compare.data.sources import SOURCES  # noqa: E402
from finetune_compare.evaluation.serving import serving_texts, time_forms  # noqa: E402
from finetune_compare.logging_setup import setup_logging  # noqa: E402
from finetune_compare.methods import get_method  # noqa: E402
from finetune_compare.models.export import OnnxClassifier, export_onnx  # noqa: E402
from finetune_compare.models.resolve import embedded_minilm_path  # noqa: E402

MAX_LENGTH = 128


def torch_form(model, tokenizer):
    model.eval()

    def forward(batch):
        with torch.inference_mode():
            return model(**batch).logits

    return forward, lambda texts: tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH,
                                            return_tensors="pt")


def forms_of(kind: str, tokenizer, tmp: Path) -> dict:
    full = make(kind).eval()
    lora = get_method("lora").make_trainable(make(kind), MethodConfig(lora_r=8, lora_target_modules=["query", "value"]),
                                             ["classifier"]).eval()
    unmerged = get_method("lora").make_trainable(make(kind), MethodConfig(lora_r=8,
                                                                          lora_target_modules=["query", "value"]),
                                                 ["classifier"]).eval()
    merged = lora.merge_and_unload().eval()
    threads = torch.get_num_threads()
    forms = {"full": torch_form(full, tokenizer), "lora unmerged": torch_form(unmerged, tokenizer),
             "lora merged": torch_form(merged, tokenizer)}
    for name, model in (("full onnx", full), ("lora merged onnx", merged)):
        path = tmp / f"{kind}-{name.replace(' ', '-')}.onnx"
        start = time.perf_counter()
        export_onnx(model, tokenizer, path, MAX_LENGTH)
        print(f"  {kind}: {name} exported in {time.perf_counter() - start:.1f} s", flush=True)
        graph = OnnxClassifier(path, tokenizer, MAX_LENGTH, threads)
        forms[name] = (graph.logits, graph.encode)
    return forms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="MiniLM only")
    args = parser.parse_args()
    setup_logging("WARNING")
    texts = serving_texts([{"id": f"{s.name}-{i:05d}", "text": r.text} for s in SOURCES.values()
                           for i, r in enumerate(read_embedded(s, "test"))])
    # one tokenizer for both: the token count is what costs time, and MiniLM's ids fit RoBERTa's larger vocabulary
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    kinds = ["minilm"] if args.quick else ["minilm", "roberta-base-random"]
    results = {"machine": {"processor": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                           **_versions()}, "texts": len(texts), "max_length": MAX_LENGTH, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            forms = forms_of(kind, tokenizer, Path(tmp))
            repeats = [time_forms(forms, texts) for _ in range(2)]
            results["models"][kind] = repeats
            print(json.dumps({kind: {f: {b: v["p50_ms"] for b, v in x.items()} for f, x in repeats[0].items()}}),
                  flush=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "serving.md").write_text(table(results) + "\n")
    print(table(results))


def table(results: dict) -> str:
    m = results["machine"]
    lines = [f"Serving latency, forward pass only (tokenisation excluded), fp32, {results['texts']} test texts up to "
             f"{results['max_length']} tokens, {m['threads']} thread(s) for torch and ONNX Runtime; "
             f"{m['processor']}, torch {m['torch']}, onnxruntime {m.get('onnxruntime', '?')}. p50 (p95) in ms over "
             "10 interleaved rounds; ratio: p50 against full's; repeat: the same ratio in a second, independent "
             "measurement.", "",
             "| model | form | batch 1 | batch 32 | batch 32 / full | repeat |", "|---|---|---:|---:|---:|---:|"]
    for kind, (first, second) in results["models"].items():
        big = next(k for k in first["full"] if k != "batch_1")
        for form, lat in first.items():
            ratio = lat[big]["p50_ms"] / first["full"][big]["p50_ms"]
            again = second[form][big]["p50_ms"] / second["full"][big]["p50_ms"]
            lines.append(f"| {kind} | {form} | {lat['batch_1']['p50_ms']:.1f} ({lat['batch_1']['p95_ms']:.1f}) | "
                         f"{lat[big]['p50_ms']:.1f} ({lat[big]['p95_ms']:.1f}) | {ratio:.2f}x | {again:.2f}x |")
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict:
    from importlib.metadata import version

    return {n: version(n) for n in ("transformers", "peft", "onnxruntime", "onnx")}


if __name__ == "__main__":
    main()
