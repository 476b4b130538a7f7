"""What the drift figures cost (issue 40): the CKA forward passes and the SVDs, per run, on the embedded MiniLM and
on a RoBERTa-base-sized random model; and the quickstart's wall time with drift on and off, side by side.

    python benchmarks/bench_drift.py                  # components, then the quickstart twice (~8 min on 2 cores)
    python benchmarks/bench_drift.py --no-quickstart  # components only

Components: 256 probe texts (the default drift_probe_texts; the quickstart takes 256 of its 450 test texts) of the
embedded sample at max_length 128, fp32, one thread per core. "full" perturbs every encoder matrix (every one is
changed, as full fine-tuning changes them); "lora" is LoRA r=8 on query and value with random B (2 matrices per
layer), merged by peft. The first call of a process also runs the base model and its SVDs (kept for every later run of that process).
Writes benchmarks/results/drift.json and drift.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from finetune_compare.config import Config, MethodConfig  # noqa: E402
from finetune_compare.data.build import build_data  # noqa: E402
from finetune_compare.evaluation import drift as drift_module  # noqa: E402
from finetune_compare.logging_setup import setup_logging  # noqa: E402
from finetune_compare.methods import get_method  # noqa: E402
from finetune_compare.models.resolve import embedded_minilm_path  # noqa: E402

PROBE, MAX_LENGTH = 256, 128  # the default drift_probe_texts
RESULTS = ROOT / "benchmarks" / "results"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def make(kind: str, tokenizer):
    from transformers import AutoModelForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    if kind == "minilm":
        return AutoModelForSequenceClassification.from_pretrained(str(embedded_minilm_path()), num_labels=3,
                                                                  ignore_mismatched_sizes=True)
    return RobertaForSequenceClassification(RobertaConfig(vocab_size=tokenizer.vocab_size, num_labels=3,
                                                          pad_token_id=tokenizer.pad_token_id,
                                                          max_position_embeddings=MAX_LENGTH + 2))


def trained(kind: str, method: str, tokenizer):
    """A stand-in for a trained model: full: every encoder matrix moved; lora: random adapters (B != 0)."""
    model = make(kind, tokenizer)
    if method == "full":
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.add_(0.01 * torch.randn_like(module.weight))
        return model
    model = get_method("lora").make_trainable(model, MethodConfig(lora_r=8, lora_target_modules=["query", "value"]),
                                             ["classifier"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    return model


def components(texts: list[str], tokenizer) -> list[dict]:
    rows = []
    for kind in ("minilm", "roberta-base-random"):
        for method in ("full", "lora"):
            drift_module._BASE_CACHE.clear()
            model = trained(kind, method, tokenizer)
            loads = []

            def load(kind=kind):
                start = time.perf_counter()
                m = make(kind, tokenizer)
                loads.append(time.perf_counter() - start)
                return m

            start = time.perf_counter()
            first = drift_module.measure_drift(model, load, tokenizer, texts, MAX_LENGTH, 10, 0.5, (kind,))
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            drift_module.pooled_layers(model, tokenizer, texts, MAX_LENGTH)
            forward_s = time.perf_counter() - start
            start = time.perf_counter()
            weights = drift_module.encoder_weights(model, drift_module._BASE_CACHE[(kind,)]["prefix"])
            base = drift_module._BASE_CACHE[(kind,)]
            drift_module.intruders(base["weights"], weights, base["svd"], 10, 0.5)
            svd_s = time.perf_counter() - start
            start = time.perf_counter()
            drift_module.measure_drift(model, load, tokenizer, texts, MAX_LENGTH, 10, 0.5, (kind,))
            later_s = time.perf_counter() - start
            rows.append({"model": kind, "method": method, "probe_texts": len(texts),
                         "first_run_s": round(first_s, 2), "base_load_s": round(loads[0], 2),
                         "later_run_s": round(later_s, 2), "cka_forward_s": round(forward_s, 2),
                         "merge_and_svd_s": round(svd_s, 2),
                         "matrices_changed": first["intruders"]["matrices_changed"]})
            print(rows[-1], flush=True)
    return rows


def quickstart(drift: bool, out: Path) -> dict:
    cmd = [sys.executable, "-m", "finetune_compare.cli", "compare", "--config", "configs/quickstart.yaml",
           "--set", f"drift={str(drift).lower()}", "--output-dir", str(out), "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_DIR": str(out.parent / "wandb")}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    runs = [json.loads(p.read_text()) for p in out.glob("runs/*/seed-*/metrics.json")]
    return {"drift": drift, "wall_s": round(wall, 1), "runs": len(runs),
            "drift_s_per_run": [r["drift"]["seconds"] for r in runs if r.get("drift")],
            "train_s_per_run": [r["timing"]["train_seconds"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-quickstart", action="store_true")
    args = parser.parse_args()
    setup_logging("WARNING")
    torch.set_num_threads(os.cpu_count() or 1)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    cfg = Config(data_source="embedded", samples_per_class=100, test_samples_per_class=400)
    texts = [e.text for e in build_data(cfg.data, 42).test][:PROBE]
    result = {"machine": f"{cpu_name()}, {os.cpu_count()} cores", "torch": torch.__version__,
              "components": components(texts, tokenizer)}
    if not args.no_quickstart:
        with tempfile.TemporaryDirectory() as tmp:
            # drift off first, then on: the same order every time (a warm file cache helps the second a little)
            result["quickstart"] = [quickstart(d, Path(tmp) / f"qs-drift-{d}") for d in (False, True)]
        off, on = result["quickstart"]
        result["quickstart_growth"] = round(on["wall_s"] / off["wall_s"] - 1, 4)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Drift cost ({result['machine']}, torch {result['torch']})", "",
             "| model | method | probe texts | first run of a process (s) | of it: base load (s) | later runs (s) | "
             "CKA forward, trained model (s) | merge + SVDs (s) | matrices changed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['method']} | {r['probe_texts']} | {r['first_run_s']} | {r['base_load_s']} | "
              f"{r['later_run_s']} | {r['cka_forward_s']} | {r['merge_and_svd_s']} | {r['matrices_changed']} |"
              for r in result["components"]]
    if "quickstart" in result:
        lines += ["", "| quickstart | wall (s) | drift per run (s) |", "|---|---:|---|"]
        lines += [f"| drift {'on' if q['drift'] else 'off'} | {q['wall_s']} | "
                  f"{', '.join(f'{s:.2f}' for s in q['drift_s_per_run']) or '-'} |" for q in result["quickstart"]]
        lines += ["", f"Growth of the quickstart's wall time with drift on: {result['quickstart_growth']:+.1%} "
                      "(one run of each, side by side; a second's noise is a few percent)."]
    (RESULTS / "drift.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
