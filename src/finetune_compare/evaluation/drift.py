"""Drift from the base model, for any encoder: how far a trained model's representations and weights moved.

- **Linear CKA** (Kornblith et al. 2019) between the base encoder's and the trained encoder's representations of a
  fixed probe set of texts no run trains on (`drift_probe_texts` test examples spread evenly over the
  length-sorted test split, the same for every run of a comparison): every layer's hidden states, mean-pooled
  over the real tokens. 1.0: the same representation up to rotation and scale; lower: changed.
- **Intruder dimensions** (Shuttleworth et al. 2024): for each weight matrix of the encoder that training changed
  (the merged weights for an adapter, the weights themselves for full fine-tuning), the top-k left singular vectors
  whose highest cosine similarity to any singular vector of the base matrix is below epsilon: new directions of
  high rank. Counted per layer type and in total.

Both are deterministic given the weights (a run at learning rate 0 reads CKA 1.0 and 0 intruders). The base
model's representations and SVDs are the same for every run of a process, so they are computed once and kept.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import numpy as np
import torch

_BASE_CACHE: dict[tuple, dict[str, Any]] = {}  # (model, probe, max_length) -> base representations and SVDs


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same n examples (n x d1, n x d2): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)
    after centring each feature."""
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else float("nan")


@torch.no_grad()
def pooled_layers(model, tokenizer, texts: list[str], max_length: int, precision: str = "no",
                  batch_size: int = 64) -> list[np.ndarray]:
    """Every layer's hidden states (the embeddings' output first), mean-pooled over the real tokens: one n x d
    array per layer, float64. `precision` as the run's test pass ('bf16', 'fp16' autocast, else fp32): the base and
    every trained model go through this same path, so an unchanged model reads exactly CKA 1."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # batches of similar lengths (little padding), put back in the texts' order at the end
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    layers: list[list[np.ndarray]] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer([texts[i] for i in order[start:start + batch_size]], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt").to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            hidden = model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).to(torch.float64)
        for i, h in enumerate(hidden):
            pooled = (h.to(torch.float64) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            if len(layers) <= i:
                layers.append([])
            layers[i].append(pooled.cpu().numpy())
    model.train(was_training)
    back = np.argsort(order)
    return [np.concatenate(chunks)[back] for chunks in layers]


def encoder_weights(model, encoder_prefix: str | None) -> dict[str, torch.Tensor]:
    """The 2-D weights of the encoder's linear layers, by name, as the trained model uses them: an adapter merged
    into a copy (peft's own merge), full fine-tuning's weights as they are. The head is not the encoder's."""
    if hasattr(model, "merge_and_unload"):  # a peft model: merge into a copy, so the run's own model is untouched
        model = copy.deepcopy(model).merge_and_unload()
    encoder = getattr(model, encoder_prefix, None) if encoder_prefix else None
    root = encoder if encoder is not None else model
    return {name: module.weight.detach().to("cpu") for name, module in root.named_modules()
            if isinstance(module, torch.nn.Linear)}


def layer_type(name: str) -> str:
    """'layer.3.attention.self.query' -> 'attention.self.query': one name for a kind of matrix in every layer."""
    return re.sub(r"^.*?layer\.\d+\.", "", name)


def _left_singular_vectors(weight: torch.Tensor) -> torch.Tensor:
    # float32: the cosines are compared with epsilon (0.5 by default), far above float32's rounding
    return torch.linalg.svd(weight.to(torch.float32), full_matrices=False).U


def intruders(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], base_svd: dict[str, torch.Tensor],
              top_k: int, epsilon: float) -> dict[str, Any]:
    """Intruder dimensions of every matrix training changed: per layer type, in total, and how many matrices."""
    per_type: dict[str, int] = {}
    changed = 0
    for name, w in tuned.items():
        w0 = base.get(name)
        # not adapted: a frozen layer (kept in bf16 it equals the base rounded to bf16), or a learning rate of 0
        if w0 is None or w0.shape != w.shape or torch.equal(w0.to(w.dtype), w):
            continue
        changed += 1
        if name not in base_svd:
            base_svd[name] = _left_singular_vectors(w0)
        u = _left_singular_vectors(w)[:, :top_k]
        best = (u.T @ base_svd[name]).abs().max(dim=1).values
        per_type[layer_type(name)] = per_type.get(layer_type(name), 0) + int((best < epsilon).sum())
    return {"total": sum(per_type.values()), "per_layer_type": dict(sorted(per_type.items())),
            "matrices_changed": changed, "top_k": top_k, "epsilon": epsilon}


def probe_rows(n: int, size: int) -> list[int]:
    """`size` row indices spread evenly over n rows (all when n <= size): over a length-sorted test split, a probe
    with the test set's mix of lengths and sources rather than its shortest texts."""
    if n <= size:
        return list(range(n))
    return [j * n // size for j in range(size)]


def measure_drift(model, base_loader, tokenizer, texts: list[str], max_length: int, top_k: int, epsilon: float,
                  cache_key: tuple, precision: str = "no") -> dict[str, Any]:
    """A trained model's drift from its base: CKA per layer on the probe texts, and intruder dimensions.
    `base_loader()` loads the untouched base model (called once per process and `cache_key`)."""
    start = time.perf_counter()
    base = _BASE_CACHE.get(cache_key)
    if base is None:
        base_model = base_loader()
        prefix = getattr(base_model, "base_model_prefix", None)  # the encoder's attribute: 'roberta', 'bert'
        base = {"layers": pooled_layers(base_model, tokenizer, texts, max_length, precision), "prefix": prefix,
                "weights": encoder_weights(base_model, prefix), "svd": {}}
        del base_model
        _BASE_CACHE.clear()  # one base per process at a time: a sweep over models does not pile them up
        _BASE_CACHE[cache_key] = base
    tuned_layers = pooled_layers(model, tokenizer, texts, max_length, precision)
    per_layer = [linear_cka(b, t) for b, t in zip(base["layers"], tuned_layers)]
    found = intruders(base["weights"], encoder_weights(model, base["prefix"]), base["svd"], top_k, epsilon)
    return {
        "cka": {"last": per_layer[-1], "mean": float(np.mean(per_layer)), "per_layer": per_layer,
                "probe_texts": len(texts), "pooling": "mean over real tokens", "precision": precision},
        "intruders": found,
        "seconds": round(time.perf_counter() - start, 3),
    }
