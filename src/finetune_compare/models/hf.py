"""The default model provider: any transformers checkpoint with a sequence-classification class."""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..config import ModelConfig
from ..labels import CLASS_NAMES
from ..errors import ModelError
from .base import BaseModel
from .resolve import ResolvedModel, load_hf_config, resolve_model

log = logging.getLogger(__name__)

ID2LABEL = dict(enumerate(CLASS_NAMES))  # the sentiment preset's head
# Models whose position ids start after the padding index, so max_position_embeddings
# overstates the usable length by padding_idx + 1 (514 -> 512 for RoBERTa-base).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart"}


def head_label_order(hf_config, labels: tuple[str, ...] = CLASS_NAMES) -> list[int] | None:
    """If the checkpoint has a trained head whose outputs are named exactly our classes (any order, case and
    surrounding spaces ignored), return for each of our class ids the checkpoint's output index; else None."""
    architectures = getattr(hf_config, "architectures", None) or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        return None
    id2label = getattr(hf_config, "id2label", None) or {}
    if len(id2label) != len(labels):
        return None
    by_name = {str(name).strip().lower(): int(idx) for idx, name in id2label.items()}
    wanted = [name.strip().lower() for name in labels]
    if set(by_name) != set(wanted):
        return None
    return [by_name[name] for name in wanted]


def output_layer(model: torch.nn.Module, num_labels: int) -> torch.nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if len(linears) != 1:
        raise ModelError(f"cannot find the single {num_labels}-way output layer of {type(model).__name__} to align labels")
    return linears[0]


class HFModel(BaseModel):
    """Loads `config.model_name` (hub id, local dir or embedded-minilm) with transformers."""

    def __init__(self, config: ModelConfig, resolved: ResolvedModel | None = None,
                 labels: tuple[str, ...] = CLASS_NAMES):
        super().__init__(config, labels)
        self.resolved = resolved or resolve_model(config.model_name)
        self.hf_config = load_hf_config(self.resolved, config.trust_remote_code)
        self._check_architecture()

    @property
    def label_order(self) -> list[int] | None:
        return head_label_order(self.hf_config, self.labels)

    def _check_architecture(self) -> None:
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

        model_type = getattr(self.hf_config, "model_type", None)
        if model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES and not self.config.trust_remote_code:
            raise ModelError(
                f"model '{self.config.model_name}' (model_type {model_type!r}) has no sequence-classification "
                f"head in transformers; use an encoder such as BERT, RoBERTa, DeBERTa or DistilBERT"
            )

    @property
    def head_fits(self) -> bool:
        return self.label_order is not None

    def _kwargs(self) -> dict[str, Any]:
        return {"trust_remote_code": self.config.trust_remote_code, "local_files_only": self.resolved.local_only}

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.resolved.path, **self._kwargs())
        except Exception as exc:
            raise ModelError(f"cannot load the tokenizer of '{self.config.model_name}': {str(exc).splitlines()[0][:240]}") from None

    def load_model(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        id2label = dict(enumerate(self.labels))
        kwargs = dict(num_labels=len(self.labels), id2label=id2label, label2id={n: i for i, n in id2label.items()},
                      **self._kwargs())
        if not self.head_fits:
            # A checkpoint without a head for our classes gets a new, randomly initialised one.
            kwargs["ignore_mismatched_sizes"] = True
        try:
            model = AutoModelForSequenceClassification.from_pretrained(self.resolved.path, **kwargs)
        except Exception as exc:
            raise ModelError(f"cannot load model '{self.config.model_name}': {str(exc).splitlines()[0][:240]}") from None
        order = self.label_order
        if order is not None and order != list(range(len(order))):
            # Keep the trained head, reorder its outputs to our ids (matched by name).
            layer = output_layer(model, len(order))
            with torch.no_grad():
                layer.weight.copy_(layer.weight[self.label_order].clone())
                if layer.bias is not None:
                    layer.bias.copy_(layer.bias[self.label_order].clone())
        return model

    def head_note(self) -> str:
        names = "/".join(self.labels)
        if self.head_fits:
            return f"kept the checkpoint's {names} head (outputs matched by label name)"
        return f"checkpoint has no {names} head: a new {len(self.labels)}-way head is initialised"

    def max_sequence_length(self) -> int | None:
        positions = getattr(self.hf_config, "max_position_embeddings", None)
        if positions is None:
            return None
        if getattr(self.hf_config, "model_type", None) in _OFFSET_POSITIONS:
            positions -= (getattr(self.hf_config, "pad_token_id", 1) or 1) + 1
        return int(positions)

    def describe(self) -> dict[str, Any]:
        return {
            "model_name": self.config.model_name, "provider": type(self).__name__, "path": self.resolved.path,
            "source": self.resolved.kind, "model_type": getattr(self.hf_config, "model_type", None),
            "head": self.head_note(), "max_positions": self.max_sequence_length(),
        }


def build_model_provider(config: ModelConfig) -> BaseModel:
    return HFModel(config)


def effective_max_length(config: ModelConfig, provider: BaseModel, tokenizer=None) -> int:
    """`max_length` capped by the model's position embeddings and the tokenizer's limit."""
    limits = [config.max_length]
    if provider.max_sequence_length():
        limits.append(provider.max_sequence_length())
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    length = min(limits)
    if length < config.max_length:
        log.warning("max_length %d exceeds what the model allows; using %d", config.max_length, length)
    return length
