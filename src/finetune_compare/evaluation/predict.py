"""Predictions: a trained model on a tokenised split (test set, base model), or a saved model on new texts.

Both return class probabilities in the label schema's order; `split_metrics` and
`prediction_rows` turn a split's probabilities into metrics.json's test block and
predictions.jsonl's rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..labels import CLASS_NAMES
from .metrics import evaluation_metrics, softmax


def predict_split(trainer, split) -> tuple[np.ndarray, float]:
    """Class probabilities for every row of `split` (a TokenizedSplit) with a Trainer; and the seconds it took."""
    start = time.perf_counter()
    output = trainer.predict(split.dataset)
    seconds = time.perf_counter() - start
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    return softmax(np.asarray(logits, dtype=np.float64)), seconds


def split_metrics(split, probs: np.ndarray, labels: tuple[str, ...] = CLASS_NAMES, holdout: tuple[str, ...] = ()
                  ) -> dict:
    preds = probs.argmax(axis=-1)
    return evaluation_metrics([e.label for e in split.examples], preds, [e.source for e in split.examples], labels,
                              holdout)


def prediction_rows(split, probs: np.ndarray, labels: tuple[str, ...] = CLASS_NAMES) -> list[dict]:
    preds = probs.argmax(axis=-1)
    return [
        {
            "id": ex.id, "source": ex.source, "label": ex.label, "predicted": int(p),
            **({"cluster": ex.cluster} if ex.cluster is not None else {}),
            "probabilities": {labels[c]: round(float(probs[i, c]), 6) for c in range(len(labels))},
            "text": ex.text,
        }
        for i, (ex, p) in enumerate(zip(split.examples, preds))
    ]


@torch.no_grad()
def predict_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64,
                  bar: str | None = None) -> np.ndarray:
    """Class probabilities of new texts with a loaded model (`predict` mode); `bar`: a progress bar's label."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float64)  # one column per class of the head
    for start in tqdm(range(0, len(texts), batch_size), desc=bar, disable=bar is None, unit="batch", leave=False):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt").to(device)
        out[idx] = torch.softmax(model(**batch).logits.float(), dim=-1).cpu().numpy()
    return out


def prediction_records(texts: list[str], probs: np.ndarray, labels: tuple[str, ...] = CLASS_NAMES
                       ) -> list[dict[str, Any]]:
    return [
        {"text": t, "label": labels[int(p.argmax())],
         **{f"p_{name}": round(float(p[i]), 6) for i, name in enumerate(labels)}}
        for t, p in zip(texts, probs)
    ]
