"""`BaseModel`: the extension point for custom models (the seed's `from models import BaseModel`).

A model provider knows how to build a tokenizer and a fresh sequence classifier
whose output index i means class i of `self.labels` (set from the data with
`use_labels`: the sentiment preset's three classes, or your own). Everything after
that (methods, training, evaluation, accounting) is shared, so a subclass only
changes what is being compared, never how.

The module returned by `load_model()` must behave like a transformers sequence
classifier: `forward(input_ids=..., attention_mask=..., labels=...)` returns an object
with `.loss` and `.logits`, and it has `save_pretrained()` if models are to be saved.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from ..config import ModelConfig
from ..labels import CLASS_NAMES


class BaseModel(ABC):
    def __init__(self, config: ModelConfig, labels: tuple[str, ...] = CLASS_NAMES):
        self.config = config
        self.labels = tuple(labels)  # the classes the model predicts, in id order (set from the data)

    def use_labels(self, labels: tuple[str, ...]) -> None:
        """Predict these classes (the data decides them: the preset's three, or your own)."""
        self.labels = tuple(labels)

    @abstractmethod
    def load_tokenizer(self) -> Any:
        """A tokenizer callable like a transformers fast tokenizer."""

    @abstractmethod
    def load_model(self) -> torch.nn.Module:
        """A new, untrained-by-us classifier with one output per class of `self.labels`, in that order."""

    def max_sequence_length(self) -> int | None:
        """The longest input the model accepts (None: no limit known)."""
        return None

    @property
    def head_fits(self) -> bool:
        """True when the checkpoint's own head already predicts our classes (zero-shot row)."""
        return False

    def head_module_names(self, model: torch.nn.Module) -> list[str]:
        """Top-level modules that form the classification head (trained by every method).

        Default: every child with parameters except the encoder (`base_model_prefix`),
        e.g. `classifier` for BERT/RoBERTa, `pre_classifier` + `classifier` for DistilBERT.
        """
        prefix = getattr(model, "base_model_prefix", None)
        return [
            name for name, child in model.named_children()
            if name != prefix and any(True for _ in child.parameters())
        ]

    def describe(self) -> dict[str, Any]:
        return {"model_name": self.config.model_name, "provider": type(self).__name__}
