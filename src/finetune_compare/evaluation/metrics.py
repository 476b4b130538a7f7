"""Evaluation metrics: overall, per class, per source, with the confusion matrix.

Classes are named by the data's labels (the sentiment preset's negative/neutral/positive, or your own).
Macro averages run over the classes present in the ground truth of the subset:
IMDB has no neutral reviews, so its macro scores average negative and positive
(a neutral prediction on IMDB still counts as an error against the true class).
TweetEval's official sentiment metric is macro-averaged recall (`macro_recall`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from ..labels import CLASS_NAMES


def classification_metrics(y_true, y_pred, labels: tuple[str, ...] | list[str] = CLASS_NAMES) -> dict:
    """Metrics over the classes `labels` (names in id order): per class by name, macro over those present."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    all_ids = list(range(len(labels)))
    present = sorted(set(y_true.tolist()))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
    pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, labels=all_ids, zero_division=0)
    per_class = {
        labels[i]: {"precision": float(pc[i]), "recall": float(rc[i]), "f1": float(fc[i]), "support": int(sc[i])}
        for i in all_ids if sc[i] > 0
    }
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=all_ids).tolist(),
    }


def evaluation_metrics(y_true, y_pred, sources, labels: tuple[str, ...] | list[str] = CLASS_NAMES) -> dict:
    """Overall metrics plus the same metrics for each source (your own data: each group)."""
    out = classification_metrics(y_true, y_pred, labels)
    groups = defaultdict(list)
    for i, s in enumerate(sources):
        groups[s].append(i)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out["per_source"] = {s: classification_metrics(y_true[idx], y_pred[idx], labels)
                         for s, idx in sorted(groups.items())}
    return out


def validation_metrics(eval_pred) -> dict:
    """Validation metrics reported to the Trainer at every evaluation (cheap: no per-source split)."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    names = [str(i) for i in range(logits.shape[-1])]  # only the aggregates are reported: names do not matter
    m = classification_metrics(labels, np.argmax(logits, axis=-1), names)
    return {k: m[k] for k in ("accuracy", "macro_f1", "macro_precision", "macro_recall")}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
