"""Save and reload trained models (prediction with them: evaluation/predict.py).

Full fine-tuning saves the whole model. LoRA/DoRA save only the adapter plus the
trained head (`modules_to_save`): megabytes instead of the whole encoder. Reloading
rebuilds the base model from `finetune_compare.json` and applies the adapter.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path


from ..config import ModelConfig
from ..errors import ModelError
from ..utils.io import write_json
from .hf import ID2LABEL, HFModel
from .resolve import EMBEDDED_MINILM

log = logging.getLogger(__name__)

META_FILE = "finetune_compare.json"


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def saved_labels(meta: dict) -> tuple[str, ...]:
    """A saved model's class names in output order (models saved before labels were recorded: the preset's)."""
    id2label = meta.get("id2label") or {str(k): v for k, v in ID2LABEL.items()}
    return tuple(id2label[str(i)] for i in range(len(id2label)))


def save_trained(model, tokenizer, target: Path, method: str, config: ModelConfig, max_length: int,
                 labels: tuple[str, ...], merged: bool = False) -> dict:
    """Write the model to `target` (and, for an adapter with `merged`, a merged full model in target/merged), its
    head named by `labels` (the data's classes, in id order); returns sizes in bytes of what was written."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    is_peft = hasattr(model, "peft_config")
    inner = model.get_base_model() if is_peft else model
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    inner.config.id2label, inner.config.label2id = id2label, label2id
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    base = portable_base(config.model_name, target)
    if is_peft:
        # peft records the absolute path it loaded from (for the embedded model: inside a virtual environment)
        adapter_config = target / "adapter_config.json"
        data = json.loads(adapter_config.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = base
        write_json(adapter_config, data)
    meta = {
        "method": method, "peft": is_peft, "base_model": config.model_name, "base_model_portable": base,
        "max_length": max_length, "num_labels": len(id2label),
        "id2label": {str(k): v for k, v in id2label.items()}, "label2id": label2id,
        "trust_remote_code": config.trust_remote_code,
    }
    write_json(target / META_FILE, meta)
    sizes = {"path": str(target), "bytes": directory_size(target)}
    if is_peft and merged:
        merged_dir = target / "merged"
        # from a fresh load (the checkpoint's precision, fp32), not the trained copy whose frozen base may be bf16
        fresh, _, _ = load_trained(target)
        full_model = fresh.merge_and_unload()
        full_model.save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
        write_json(merged_dir / META_FILE, {**meta, "peft": False, "merged_from": method})
        sizes["merged_bytes"] = directory_size(merged_dir)
        sizes["bytes"] -= sizes["merged_bytes"]
    return sizes


# the embedded package ships these weights: the hub id lets plain peft find them on another machine
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def portable_base(model_name: str, target: Path) -> str:
    """The base as a hub id, or a local folder as a path relative to the save folder (never a venv path)."""
    if model_name == EMBEDDED_MINILM:
        return EMBEDDED_HUB_ID
    local = Path(model_name)
    if local.is_dir():
        return os.path.relpath(local.resolve(), Path(target).resolve())
    return model_name


def _base_for_loading(meta: dict, path: Path) -> str:
    """Our own loader: the recorded name; a relative local base is resolved against the save folder."""
    name = meta["base_model"]
    if name == EMBEDDED_MINILM or Path(name).is_dir():
        return name
    portable = meta.get("base_model_portable")
    if portable and (path / portable).is_dir():
        return str((path / portable).resolve())
    if Path(name).is_absolute() or name.startswith("."):
        raise ModelError(f"the base model of the adapter in '{path}' was '{name}', which does not exist here; "
                         "copy that model folder back, or keep it at the same place relative to the adapter")
    return name


def load_trained(path: str | Path):
    """(model, tokenizer, meta) for a folder written by `save_trained`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"'{path}' is not a model saved by finetune-compare (no {META_FILE}); "
                         "train with save_model: true")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "max_length" not in meta:
            raise ValueError("not a mapping with max_length")
        labels = saved_labels(meta)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"'{meta_path}' is corrupt (its id2label does not number the classes 0..n-1: "
                         f"{type(exc).__name__} {exc}); save the model again (save_model: true)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"'{meta_path}' is corrupt ({exc}); save the model again (save_model: true)") from None
    weights = ("adapter_model.safetensors", "adapter_model.bin") if meta.get("peft") else (
        "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
    if not any((path / w).is_file() for w in weights):
        raise ModelError(f"'{path}' has no weights file ({' or '.join(weights)}); the save was incomplete: "
                         "save the model again")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if meta.get("peft"):
            from peft import PeftModel

            base_cfg = ModelConfig(model_name=_base_for_loading(meta, path),
                                   trust_remote_code=meta.get("trust_remote_code", False))
            base = HFModel(base_cfg, labels=labels).load_model()
            model = PeftModel.from_pretrained(base, str(path), is_trainable=False)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(path), local_files_only=True, trust_remote_code=meta.get("trust_remote_code", False)
            )
    except ModelError:
        raise
    except Exception as exc:  # safetensors, torch and peft each raise their own types for a damaged file
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load the model saved in '{path}' ({type(exc).__name__}: {first}); the files "
                         "may be truncated or from another version: save the model again") from None
    heads = model.config.num_labels
    if heads != len(labels):  # the files do not belong together: predictions would be named by the wrong classes
        raise ModelError(f"'{path}': {META_FILE} names {len(labels)} classes ({', '.join(labels)}) but the model's "
                         f"head has {heads} outputs; the folder mixes files of two models: save the model again")
    model.eval()
    return model, tokenizer, meta
