"""A saved run as what gets deployed: a merged model plain transformers loads, and an ONNX graph.

The trained head travels with the merge: peft's `merge_and_unload` returns the base model with the adapter folded
in and the `modules_to_save` copy (our head) in place, and `save_pretrained` writes it with the run's `id2label`.
A method that cannot merge (peft has no merge for it) is exported as the base reference plus the adapter, which
`load_trained` (or peft's `AutoPeftModelForSequenceClassification`) loads.

ONNX: `torch.onnx.export(..., dynamo=True)`, torch's own exporter. It traces the model with torch.export and
reproduces transformers 5's attention-mask code exactly (4e-8 on MiniLM here); the older TorchScript exporter
traced that code into a graph that differed by 0.016 in logits, and optimum's exporter (optimum-onnx 0.1) requires
transformers < 4.58.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from ..utils.io import write_json
from .saving import META_FILE, directory_size, load_trained, portable_base

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_OPSET = 18
# protobuf caps one file at 2 GiB: larger models keep their weights in model.onnx.data beside the graph
ONNX_SINGLE_FILE_BYTES = 1_500_000_000


def _head_in_place(model) -> None:
    """Put each trained `modules_to_save` copy (our head) where its wrapper was. peft's unload replaces a wrapper
    by copying a `.weight` from it, which a RoBERTa head (dense + out_proj) does not have: IA3 then fails with
    "'RobertaClassificationHead' object has no attribute 'weight'" (the head lost on merge: unsloth-zoo#1087)."""
    from peft.utils.other import ModulesToSaveWrapper

    wrappers = [(name, m) for name, m in model.named_modules() if isinstance(m, ModulesToSaveWrapper)]
    for name, wrapper in wrappers:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, wrapper.modules_to_save[wrapper.active_adapters[0]])


def merge(model) -> tuple[torch.nn.Module, str | None]:
    """(the model to deploy, why it is not merged or None). A plain model (full, head) is itself; a peft model is
    merged when peft can merge its method, else None and peft's reason (the model may be half-unloaded then:
    reload it)."""
    if not hasattr(model, "peft_config"):
        return model, None
    kind = next(iter(model.peft_config.values())).peft_type
    try:
        _head_in_place(model)
        return model.merge_and_unload(), None
    except (AttributeError, NotImplementedError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, f"{getattr(kind, 'value', kind)} cannot be merged by peft ({reason})"


def write_deployable(run_model: Path, target: Path, merge_adapter: bool = True) -> dict:
    """Write the saved model in `run_model` to `target` as the folder users load: merged where the method allows
    (and `merge_adapter`), with the head and label names. Returns what was written and how."""
    model, tokenizer, meta = load_trained(run_model)
    is_peft = bool(meta.get("peft"))
    deployable, not_merged = merge(model) if (is_peft and merge_adapter) else (model, None)
    if is_peft and not merge_adapter:
        not_merged = "--no-merge: the adapter is kept apart from the base"
    if deployable is None:  # a failed merge may have unloaded part of the model: the adapter from a fresh load
        deployable, tokenizer, meta = load_trained(run_model)
    merged = is_peft and not_merged is None
    target.mkdir(parents=True, exist_ok=True)
    inner = deployable.get_base_model() if hasattr(deployable, "peft_config") else deployable
    id2label = {int(k): v for k, v in meta["id2label"].items()}
    inner.config.id2label, inner.config.label2id = id2label, {v: k for k, v in id2label.items()}
    deployable.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    if hasattr(deployable, "peft_config"):  # base + adapter: the base named so another machine finds it
        adapter_config = target / "adapter_config.json"
        data = json.loads(adapter_config.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = portable_base(meta["base_model"], target)
        write_json(adapter_config, data)
    write_json(target / META_FILE, {**meta, "peft": not merged and is_peft,
                                    **({"merged_from": meta["method"]} if merged else {})})
    return {"merged": merged, "not_merged": not_merged, "is_peft": is_peft, "meta": meta,
            "max_length": int(meta["max_length"]), "bytes": directory_size(target)}


def load_export(folder: Path, merged_or_plain: bool):
    """(model, tokenizer) of an export folder as its user loads it: plain transformers, offline, for a merged or
    whole model; through `load_trained` (peft, the base it names) for an adapter kept apart."""
    if not merged_or_plain:
        model, tokenizer, _ = load_trained(folder)
        return model, tokenizer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class _Logits(torch.nn.Module):
    """The classifier with named tensor inputs and logits out: the graph ONNX Runtime users call."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def _peft_layer(model) -> str:
    """The first layer a peft method added (its name and type), to name in an export failure."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    added = [(n, m) for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
    added = added or [(n, m) for n, m in model.named_modules()  # prompt learning: its encoder, not a tuner layer
                      if type(m).__module__.startswith("peft.") and n and not n.endswith("base_model")]
    return f"{added[0][0]} ({type(added[0][1]).__name__})" if added else "a layer peft added"


def export_onnx(model, tokenizer, path: Path, max_length: int) -> list[str]:
    """Write `model` as an ONNX graph with dynamic batch and sequence axes; returns its input names."""
    from torch.export import Dim

    # in the wrapper's argument order, which is the graph's input order
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(["an example", "a second, longer example for the trace"], padding=True, truncation=True,
                       max_length=max_length, return_tensors="pt")
    inputs = {n: sample[n] for n in names}
    batch, sequence = Dim("batch"), Dim("sequence", max=max(max_length, 8))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    model = model.float().eval()
    try:
        with torch.no_grad(), _exporter_quiet():
            torch.onnx.export(_Logits(model).eval(), (), str(path), kwargs=inputs, input_names=names,
                              output_names=["logits"], dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
                              dynamo=True,
                              opset_version=ONNX_OPSET, external_data=weights > ONNX_SINGLE_FILE_BYTES,
                              verbose=False)
    except Exception as exc:  # torch.export and onnxscript raise many types for an unsupported operation
        where = _peft_layer(model) if hasattr(model, "peft_config") else f"the {type(model).__name__}"
        raise OnnxUnsupported(f"ONNX export failed at {where} ({_cause(exc)})") from None
    return names


@contextlib.contextmanager
def _exporter_quiet():
    """The exporter logs every graph pass at INFO and warns about torchvision ops a text model never uses: the user
    sees our one progress line instead (a failure still raises with its cause)."""
    loggers = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _cause(exc: BaseException) -> str:
    """The line of torch.onnx's long message that says what failed (its 'Exception summary'), without colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    summary = text.split("## Exception summary", 1)[-1].strip().splitlines()
    line = next((x for x in summary if x.strip()), type(exc).__name__)
    return line.strip()[:240]


class OnnxUnsupported(ModelError):
    """This model cannot be written as ONNX; the message names where the export stopped."""


class OnnxClassifier:
    """An exported graph run by ONNX Runtime on CPU, with the tokenizer saved beside it."""

    def __init__(self, path: Path, tokenizer, max_length: int, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:  # the same threads as torch, so latencies compare like for like
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]
        self.tokenizer, self.max_length = tokenizer, max_length

    def logits(self, encoded) -> np.ndarray:
        return self.session.run(["logits"], {n: np.asarray(encoded[n], dtype=np.int64) for n in self.names})[0]

    def encode(self, texts: list[str]):
        return self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="np")


def predict_onnx(classifier: OnnxClassifier, texts: list[str], batch_size: int = 64, bar: str | None = None
                 ) -> np.ndarray:
    """Class probabilities of `texts` with the ONNX graph (length-sorted batches, as `predict_texts`)."""
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = None
    for start in tqdm(range(0, len(texts), batch_size), desc=bar, disable=bar is None, unit="batch", leave=False):
        idx = order[start:start + batch_size]
        logits = classifier.logits(classifier.encode([texts[i] for i in idx])).astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        if out is None:
            out = np.zeros((len(texts), probs.shape[1]))
        out[idx] = probs
    return out if out is not None else np.zeros((0, 0))
