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
from sklearn.metrics import confusion_matrix

from ..labels import CLASS_NAMES


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of every class from confusion matrices (..., k, k), rows the true class: one matrix
    or a batch (the test-set bootstrap's resamples). 0 where undefined, as sklearn's zero_division=0."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1


def classification_metrics(y_true, y_pred, labels: tuple[str, ...] | list[str] = CLASS_NAMES) -> dict:
    """Metrics over the classes `labels` (names in id order): per class by name, macro over those present.

    Everything is derived from one sklearn confusion matrix (the values of precision_recall_fscore_support with
    zero_division=0, checked in the tests): four sklearn calls cost ~12 ms of input validation per source, and
    the decision-rule simulation computes this for thousands of runs.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    all_ids = list(range(len(labels)))
    cm = confusion_matrix(y_true, y_pred, labels=all_ids)
    support = cm.sum(axis=1)
    precision, recall, f1 = per_class_scores(cm)
    present = sorted(set(y_true.tolist()))
    per_class = {
        labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
        for i in all_ids if support[i] > 0
    }
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


def evaluation_metrics(y_true, y_pred, sources, labels: tuple[str, ...] | list[str] = CLASS_NAMES,
                       holdout: tuple[str, ...] | list[str] = ()) -> dict:
    """Overall metrics plus the same metrics for each source (your own data: each group); with held-out sources,
    also over the sources training saw (`domain.in_domain`) and over the held-out ones (`domain.out_of_domain`)."""
    out = classification_metrics(y_true, y_pred, labels)
    groups = defaultdict(list)
    for i, s in enumerate(sources):
        groups[s].append(i)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out["per_source"] = {s: classification_metrics(y_true[idx], y_pred[idx], labels)
                         for s, idx in sorted(groups.items())}
    if holdout:
        out_of = np.isin(np.asarray(sources, dtype=object), list(holdout))
        out["domain"] = {"held_out": sorted(holdout)}
        for part, rows in (("in_domain", ~out_of), ("out_of_domain", out_of)):
            if rows.any():  # (a test draw without a held-out example has no out-of-domain score)
                out["domain"][part] = classification_metrics(y_true[rows], y_pred[rows], labels)
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
