"""The model card of an exported run: README.md in the Hugging Face convention (YAML metadata, then prose).

Everything on it comes from the run's own files (metrics.json, config.yaml, predictions.jsonl), the export's
check and, when the run belongs to a comparison, that comparison's verdict: nothing is typed in by hand.
"""

from __future__ import annotations

import numpy as np
import yaml

from ..evaluation.run_record import RunRecord
from ..errors import ModelError
from ..methods import get_method
from .statistics import metric_from_confusions, stratified_resamples, _confusions

CARD_BOOTSTRAP = 2000
CARD_CONFIDENCE = 0.95


def run_interval(rows: list[dict], metric: str, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of one run's test `metric`: test examples resampled within each source,
    as independent (the one run's weights held fixed: it says nothing of another seed's run)."""
    y_true = np.array([int(r["label"]) for r in rows])
    y_pred = np.array([int(r["predicted"]) for r in rows])
    classes = np.unique(y_true)
    k = int(max(y_true.max(), y_pred.max())) + 1
    idx = stratified_resamples([r.get("source", "") for r in rows], CARD_BOOTSTRAP, np.random.default_rng(seed))
    values = metric_from_confusions(_confusions(y_true, y_pred, idx, k), metric, classes)
    tail = (1 - CARD_CONFIDENCE) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def method_settings(method: str, run_config: dict) -> dict:
    """The method's own settings as the run used them (its flat keys in the run's config.yaml)."""
    from ..config.method_section import register_variants

    register_variants(run_config.get("method_variants"))  # a variant is a method by the run's declaration
    try:
        settings = get_method(method).settings  # a peft type by name is registered here, as the run had it
    except ModelError:
        return {}
    keys = list(settings.flat_keys()) if settings else []
    if method == "dora":  # DoRA is LoRA with use_dora: it reads LoRA's settings
        keys = list(get_method("lora").settings.flat_keys())
    return {k: run_config[k] for k in keys if k in run_config}


def _budget(record: RunRecord, run_config: dict) -> str:
    t = record.training or {}
    steps = t.get("steps")
    return (f"{t.get('epochs_run', '?')} epoch(s) run of {t.get('max_epochs', '?')}, {steps if steps is not None else '?'} "
            f"optimizer steps at batch {run_config.get('batch_size', '?')}, learning rate {t.get('learning_rate', '?')}")


def _how_to_use(merged: bool, has_onnx: bool, input_names: list[str]) -> list[str]:
    lines = ["```python", "from transformers import AutoModelForSequenceClassification, AutoTokenizer"]
    if merged:
        lines += ["model = AutoModelForSequenceClassification.from_pretrained(\"path/to/this/folder\")"]
    else:  # peft finds the base by adapter_config.json's base_model_name_or_path (a hub id, or a path)
        lines = ["The adapter is kept apart from its base, which `adapter_config.json` names "
                 "(`base_model_name_or_path`: a hub id, or a folder relative to this one); peft loads both, and "
                 "`finetune-compare predict --model path/to/this/folder` resolves a relative base itself.", "",
                 "```python", "from peft import AutoPeftModelForSequenceClassification",
                 "from transformers import AutoTokenizer",
                 "model = AutoPeftModelForSequenceClassification.from_pretrained(\"path/to/this/folder\")"]
    lines += ["tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")",
              "probs = model(**tokenizer([\"what a film\"], return_tensors=\"pt\")).logits.softmax(-1)",
              "label = model.config.id2label[int(probs.argmax())]", "```"]
    if has_onnx:
        feed = ", ".join(f"\"{n}\": enc[\"{n}\"]" for n in input_names)
        lines += ["", "ONNX Runtime (CPU), with the same tokenizer:", "", "```python", "import onnxruntime",
                  "session = onnxruntime.InferenceSession(\"path/to/this/folder/model.onnx\")",
                  "enc = tokenizer([\"what a film\"], return_tensors=\"np\")",
                  f"logits = session.run([\"logits\"], {{{feed}}})[0]", "```"]
    return lines


def model_card(record: RunRecord, run_config: dict, rows: list[dict], export: dict, verdict: str | None,
               base_model: str) -> str:
    """README.md for the export folder."""
    method = record.method
    settings = method_settings(method, run_config)
    params = record.params
    merged = export["merged"] or not export["is_peft"]
    meta = {"library_name": "transformers" if merged else "peft",
            **({"base_model": base_model} if "/" in base_model else {}),  # a hub id; a local folder is named below
            "pipeline_tag": "text-classification",
            "tags": ["finetune-compare", method, *(["peft"] if export["is_peft"] else [])],
            "metrics": ["macro_f1", "accuracy"]}
    sources = sorted((record.test.get("per_source") or {}).keys())
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
             f"# {method} fine-tune of {base_model} for {len(record.labels)}-class text classification", "",
             f"Exported by finetune-compare from run `{method}` seed {record.seed}"
             + (f" ({export['choice']})" if export.get("choice") else "") + ".", ""]
    if verdict:
        lines += ["**The comparison's verdict:** " + verdict, ""]
    lines += ["## Model", "",
              f"- Base model: `{base_model}`",
              f"- Method: {method}" + (", merged into the base" if export["merged"] else
                                       f", kept as an adapter ({export['not_merged']})" if export["is_peft"] else ""),
              *(f"- `{k}`: {v}" for k, v in settings.items()),
              f"- Trained parameters: {params['trainable']:,} of {params['total']:,} ({params['trainable_ratio']:.2%})",
              "- Labels (id: name): " + ", ".join(f"{i}: {n}" for i, n in enumerate(record.labels)), "",
              "## Training data and budget", ""]
    data = record.data or {}
    held_out = (record.test.get("domain") or {}).get("held_out") or []
    lines += [f"- Sources: {', '.join(sources) or 'one'}"
              + (f"; held out of training (out-of-domain test only): {', '.join(held_out)}" if held_out else ""),
              f"- Examples: {data.get('train', '?'):,} train, {data.get('validation', '?'):,} validation, "
              f"{record.test['n']:,} test; max length {data.get('max_length', '?')} tokens"
              if isinstance(data.get("train"), int) else f"- Test examples: {record.test['n']:,}",
              f"- Budget: {_budget(record, run_config)}",
              f"- Seed {record.seed}; data draw {data.get('fingerprint', '?')}", "",
              "## Test metrics", "",
              "| metric | value | 95% interval |", "|---|---|---|"]
    for metric in ("macro_f1", "accuracy"):
        low, high = run_interval(rows, metric, seed=record.seed or 0)
        lines.append(f"| {metric} | {record.test[metric]:.4f} | [{low:.4f}, {high:.4f}] |")
    lines += ["", f"Intervals: percentile bootstrap over the test examples ({CARD_BOOTSTRAP:,} resamples within each "
              "source), taking the examples as independent; they hold this run's weights fixed, so they say nothing "
              "of how another seed would score."
              + (" The data declares clusters of examples that belong together; this interval ignores them and is "
                 "too narrow." if any(r.get("cluster") is not None for r in rows) else ""), ""]
    for source in sources:
        lines.append(f"- {source}: macro-F1 {record.test['per_source'][source]['macro_f1']:.4f}")
    check = export["check"]
    lines += ["", "## Export check", "",
              f"Reloaded from this folder and run on the run's {check['examples']:,} test texts, compared with the "
              "run's own predictions (predictions.jsonl):", "",
              "| runtime | label agreement | largest probability difference | tolerance |", "|---|---|---|---|"]
    for runtime, c in check["runtimes"].items():
        lines.append(f"| {runtime} | {c['label_agreement']:.2%} | {c['max_abs_diff']:.2e} | {c['tolerance']:g} |")
    lines += ["", check["tolerance_note"], "", "## How to use", "", *_how_to_use(merged, export.get("onnx") is not None,
                                                                              export.get("onnx_inputs") or []), ""]
    return "\n".join(lines)
