"""Serving cost in a comparison (`serving: true`): each method's median run exported, checked, and timed.

For every method the run nearest its median primary score is exported as `finetune-compare export --onnx` would
(merged where peft can, checked against the run's predictions), into a temporary folder. Then every deployable
form of every method is timed in the same rounds (evaluation/serving.py): the unmerged adapter as trained, the
merged model, and the ONNX graph under ONNX Runtime with the same number of threads as torch. serving.json holds
the latencies, the sizes on disk and the export checks; the temporary exports are removed (export one to keep it).
"""

from __future__ import annotations

import logging
import platform
import tempfile
from pathlib import Path

from ...analysis.run_files import read_json, read_jsonl
from ...errors import UserError
from ...layout import PREDICTIONS, Layout
from ...utils.io import write_json
from .export import export_run
from .run_choice import choose_run

log = logging.getLogger(__name__)


def _torch_form(model, tokenizer, max_length: int):
    import torch

    def encode(texts):
        return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")

    def forward(batch):
        with torch.inference_mode():
            return model(**batch).logits

    return forward, encode


def _up_to_date(path: Path, seeds: dict[str, int]) -> bool:
    """serving.json measured the same runs (resume: a finished comparison rerun does not time again)."""
    if not path.is_file():
        return False
    try:
        data = read_json(path)
        return {m: v["seed"] for m, v in data["methods"].items()} == seeds
    except Exception:  # an unreadable or older file is measured again
        return False


def measure_serving(output_dir: Path, methods: list[str], primary_metric: str) -> dict:
    """Export and time each method's median run; writes and returns serving.json's content."""
    import torch

    from ...evaluation.serving import BATCH1_TEXTS_PER_ROUND, ROUNDS, WARMUP_ROUNDS, serving_texts, time_forms
    from ...models.export import ONNX_FILE, OnnxClassifier, load_export
    from ...models.saving import load_trained

    layout = Layout(output_dir)
    chosen, skipped = {}, {}
    for m in methods:  # a method that cannot be measured is said, never the end of the comparison's report
        try:
            chosen[m] = choose_run(output_dir, m, metric=primary_metric)
        except UserError as exc:
            skipped[m] = str(exc)
    seeds = {m: c.record.seed for m, c in chosen.items()}
    if _up_to_date(layout.serving, seeds):
        log.info("serving: %s already measured these runs", layout.serving)
        return read_json(layout.serving)
    if not chosen:
        log.warning("serving: no method has a finished run to export (%s)", "; ".join(skipped.values()))
        return {}
    threads = torch.get_num_threads()
    texts = serving_texts(read_jsonl(next(iter(chosen.values())).folder / PREDICTIONS))
    forms, per_method = {}, {}
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".serving-") as tmp:
        for m, c in list(chosen.items()):
            log.info("serving: exporting %s seed %d (%s)", m, c.record.seed, c.why)
            try:
                info = export_run(output_dir, Path(tmp) / m, method=m, seed=c.record.seed, onnx=True)
            except UserError as exc:  # no saved model, or an export that fails its check
                log.warning("serving: %s not measured: %s", m, exc)
                skipped[m] = str(exc)
                continue
            folder = Path(tmp) / m
            sizes = {"model": info["model_bytes"]}
            model, tokenizer = load_export(folder, info["merged"] or not info["is_peft"])
            forms[f"{m}/model"] = _torch_form(model, tokenizer, info["max_length"])
            if info["is_peft"]:  # as trained: the base with the adapter's layers beside its weights
                adapter, adapter_tokenizer, _ = load_trained(Path(c.record.saved_model["path"]))
                forms[f"{m}/adapter"] = _torch_form(adapter, adapter_tokenizer, info["max_length"])
                sizes["adapter"] = c.record.saved_model["bytes"]
            if info.get("onnx"):
                graph = OnnxClassifier(folder / ONNX_FILE, tokenizer, info["max_length"], threads)
                forms[f"{m}/onnx"] = (graph.logits, graph.encode)
                sizes["onnx"] = info["onnx"]["bytes"]
            per_method[m] = {"seed": c.record.seed, "choice": c.why, "merged": info["merged"],
                             "not_merged": info["not_merged"], "onnx_skipped": info.get("onnx_skipped"),
                             "bytes": sizes, "check": info["check"]}
        log.info("serving: timing %d forms over %d rounds on %d texts (%d threads)", len(forms), ROUNDS, len(texts),
                 threads)
        timed = time_forms(forms, texts) if forms else {}
    for name, latency in timed.items():
        m, form = name.split("/")
        per_method[m].setdefault("latency", {})[form] = latency
    result = {
        "texts": len(texts), "threads": threads, "rounds": ROUNDS, "warmup_rounds": WARMUP_ROUNDS,
        "batch_1_texts_per_round": BATCH1_TEXTS_PER_ROUND, "tokenisation": "excluded (the same for every form)",
        "device": "cpu (ONNX Runtime: CPUExecutionProvider)",
        "processor": (chosen[methods[0]].record.environment or {}).get("cpu") or platform.machine(),
        "primary_metric": primary_metric, "methods": per_method, "not_measured": skipped,
    }
    write_json(layout.serving, result)
    return result
