"""Attention for training: the eager formula while dropout is on and the tensors are on a CPU, SDPA otherwise.

Why: PyTorch's SDPA has no fused CPU kernel that applies dropout, so in training it falls back to its math path,
which upcasts bf16 inputs to fp32 and keeps fp32 probabilities, an fp32 dropout mask and fp32 dropped
probabilities for backward. The same formula written out (transformers' eager attention) under bf16 autocast
keeps them in bf16. Measured on RoBERTa-base size, batch 16 x 128, torch 2.13 CPU: tensors saved for backward
fall by ~320 MB (LoRA 1,295 -> 974 MB, full 1,508 -> 1,184 MB) and a step is ~8% faster. The result is the same
attention; only the dtype of the saved intermediates changes, as in GPU bf16 kernels.
At inference (no dropout) SDPA's fused CPU kernel is faster than eager (MiniLM ~30%), and on GPUs SDPA has
fused dropout kernels, so both stay on SDPA.

The switch uses transformers' own extension points (`AttentionInterface`, `AttentionMaskInterface`), so any
model that dispatches attention through them gets it; other models keep what they had.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_eager_cpu_dropout"


def _takes_eager_path(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, dropout: float,
                      position_bias: torch.Tensor | None) -> bool:
    # Encoder self-attention only: causal, grouped-query or position-biased attention keeps SDPA, which handles
    # them itself.
    return (module.training and dropout > 0 and query.device.type == "cpu" and not getattr(module, "is_causal", False)
            and query.shape[1] == key.shape[1] and position_bias is None)


def training_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                       **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
    if not _takes_eager_path(module, query, key, dropout, kwargs.get("position_bias")):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        # SDPA's mask: True = attend. Additive in the scores' dtype, so bf16 scores are not promoted to fp32.
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros(attention_mask.shape, dtype=scores.dtype).masked_fill_(
                ~attention_mask, torch.finfo(scores.dtype).min)
        scores = scores + attention_mask.to(scores.dtype)
    weights = torch.nn.functional.dropout(torch.softmax(scores, dim=-1), p=dropout, training=True)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(NAME, training_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the boolean mask SDPA gets; the eager path converts it


def use_training_attention(model: torch.nn.Module, device: str) -> str:
    """Switch `model` to `training_attention` when it trains on a CPU; returns what training's attention is.

    'eager' when switched (the eager formula runs while dropout is on; evaluation stays on SDPA), else the
    model's own implementation: GPUs keep SDPA, and so do models that do not dispatch through transformers'
    attention interface.
    """
    current = getattr(getattr(model, "config", None), "_attn_implementation", None) or "model's own"
    if device != "cpu" or current != "sdpa" or not getattr(model, "_supports_attention_backend", False):
        return current
    model.set_attn_implementation(NAME)
    return "eager"
