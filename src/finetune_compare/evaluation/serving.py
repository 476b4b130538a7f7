"""Serving latency: the forward pass of each deployable form of a model, timed in one process on one set of texts.

Every form (the unmerged adapter, the merged model, the ONNX graph; full fine-tuning's model) is timed in the same
rounds, one call each in turn and in a rotating order, so a change in the machine's load (another process, the
CPU's clock) falls on all of them alike and their ratios hold. Tokenisation is done once beforehand and left out:
it is the same work for every form. Batch 1 runs each of the texts alone; batch 32 runs them together (a test set
smaller than 32 texts: all of them, and the key says how many).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

SERVING_TEXTS = 32  # test texts, the same for every method (the comparison's test set is shared)
WARMUP_ROUNDS = 2  # untimed: first calls allocate, pick kernels, fill caches
ROUNDS = 10  # timed rounds: batch 32 gets ROUNDS calls per form, batch 1 ROUNDS x 8 texts
BATCH1_TEXTS_PER_ROUND = 8

Forward = Callable[[object], object]  # runs one encoded batch


def serving_texts(rows: list[dict]) -> list[str]:
    """The fixed texts every form and method is timed on: the first SERVING_TEXTS test rows by id."""
    ordered = sorted(rows, key=lambda r: str(r["id"]))
    return [str(r["text"]) for r in ordered[:SERVING_TEXTS]]


def _timed(forward: Forward, batch) -> float:
    start = time.perf_counter()
    forward(batch)
    return (time.perf_counter() - start) * 1000


def time_forms(forms: dict[str, tuple[Forward, Callable[[list[str]], object]]], texts: list[str],
               rounds: int = ROUNDS, warmup: int = WARMUP_ROUNDS) -> dict[str, dict]:
    """{form: {"batch_1": {p50_ms, p95_ms, calls}, "batch_32": {...}}} for `forms` = {name: (forward, encode)}.

    `encode` turns texts into the batch its `forward` takes (padded to the longest text of the batch)."""
    if len(texts) < 2:
        raise ValueError("serving latency needs at least 2 texts")
    names = list(forms)
    single = {n: [forms[n][1]([t]) for t in texts] for n in names}
    whole = {n: forms[n][1](texts) for n in names}
    times: dict[str, dict[int, list[float]]] = {n: {1: [], len(texts): []} for n in names}
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: no form always first after a pause
        for n in order:
            forward = forms[n][0]
            picks = [(r * BATCH1_TEXTS_PER_ROUND + i) % len(texts) for i in range(BATCH1_TEXTS_PER_ROUND)]
            ones = [_timed(forward, single[n][i]) for i in picks]
            batch = _timed(forward, whole[n])
            if r >= warmup:
                times[n][1] += ones
                times[n][len(texts)] += [batch]
    return {n: {f"batch_{b}": _summary(times[n][b]) for b in (1, len(texts))} for n in names}


def _summary(values: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p95_ms": round(float(np.percentile(values, 95)), 3),
            "calls": len(values)}
