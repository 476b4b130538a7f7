"""Static shapes: every batch padded up to one of a few lengths (`pad_buckets`), the ground a compiled step needs.

Dynamic padding gives every batch its own length, so a compiled step (CUDA graphs above all) would be recompiled
or re-recorded for each new length. With N buckets there are at most N shapes a split. The lengths are chosen from
the run's own length-grouped batches (the sampler is seeded, so they are known before training) to waste the fewest
padded tokens, and the top one covers the longest text of every split, so no batch is ever cut.
"""

from __future__ import annotations

import bisect
import logging
from typing import Sequence

from transformers import DataCollatorWithPadding

from .sampler import LengthGroupedShuffledSampler, padding_fraction, round_up

log = logging.getLogger(__name__)


def choose_buckets(batch_maxima: Sequence[int], batch_sizes: Sequence[int], n: int, top: int) -> list[int]:
    """At most `n` lengths, the last `top`, that minimise the padded tokens of these batches (each padded up to the
    first length that holds its longest row): dynamic programming over the batches' distinct maxima."""
    weight: dict[int, int] = {}
    for m, size in zip(batch_maxima, batch_sizes):
        weight[min(m, top)] = weight.get(min(m, top), 0) + size
    values = sorted(set(weight) | {top})
    rows = [weight.get(v, 0) for v in values]
    k = len(values)
    # cost(i, j): the rows of values i..j all padded to values[j]
    prefix = [0]
    for r in rows:
        prefix.append(prefix[-1] + r)

    def cost(i: int, j: int) -> int:
        return (prefix[j + 1] - prefix[i]) * values[j]

    n = max(1, min(n, k))
    inf = float("inf")
    best = [[inf] * k for _ in range(n + 1)]  # best[b][j]: values 0..j covered by b buckets, the last at j
    choice = [[-1] * k for _ in range(n + 1)]
    for j in range(k):
        best[1][j] = cost(0, j)
    for b in range(2, n + 1):
        for j in range(k):
            for i in range(j):
                c = best[b - 1][i] + cost(i + 1, j)
                if c < best[b][j]:
                    best[b][j], choice[b][j] = c, i
    b = min(range(1, n + 1), key=lambda b: (best[b][k - 1], b))
    out, j = [], k - 1
    while j >= 0 and b >= 1:
        out.append(values[j])
        j, b = choice[b][j], b - 1
    return sorted(out)


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """The first epoch's length-grouped batches of a run with this seed (what the buckets are fitted to)."""
    return LengthGroupedShuffledSampler(lengths, batch_size, seed).batches()


def run_buckets(train_lengths: Sequence[int], other_lengths: Sequence[int], batch_size: int, seed: int, n: int,
                multiple: int | None = None) -> list[int]:
    """The bucket lengths of a run: fitted to its first epoch's batches, the top one the longest row anywhere."""
    batches = epoch_batches(train_lengths, batch_size, seed)
    top = max([*train_lengths, *other_lengths, 1])
    buckets = choose_buckets([max(train_lengths[i] for i in b) for b in batches], [len(b) for b in batches], n, top)
    if multiple:  # tensor cores want multiples of 8; the rounding never goes below a length it must hold
        buckets = sorted({round_up(b, multiple) for b in buckets})
    return buckets


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    i = bisect.bisect_left(buckets, length)
    return buckets[min(i, len(buckets) - 1)]


def first_epoch_padding(lengths: Sequence[int], batch_size: int, seed: int, buckets: Sequence[int] | None) -> float:
    """Share of pad tokens in the run's first epoch, padded to each batch's longest row or to its bucket."""
    return padding_fraction(lengths, epoch_batches(lengths, batch_size, seed),
                            (lambda m: bucket_for(m, buckets)) if buckets else None)


class BucketCollator(DataCollatorWithPadding):
    """Pads each batch up to the first bucket that holds its longest row (one of a few fixed shapes)."""

    def __init__(self, tokenizer, buckets: Sequence[int]):
        super().__init__(tokenizer, padding="max_length")
        self.buckets = sorted(buckets)

    def __call__(self, features):
        longest = max(len(f["input_ids"]) for f in features)
        self.max_length = bucket_for(longest, self.buckets)
        return super().__call__(features)


def run_shapes(pad_buckets: int, train_lengths: Sequence[int], other_lengths: Sequence[int],
               batch_size: int, seed: int, multiple: int | None) -> tuple[list[int] | None, dict]:
    """A run's bucket lengths (None: dynamic padding) and what metrics.json records of its shapes: the bucket
    lengths and the first epoch's share of pad tokens."""
    buckets = (run_buckets(train_lengths, other_lengths, batch_size, seed, pad_buckets, multiple)
               if pad_buckets else None)
    padding = first_epoch_padding(train_lengths, batch_size, seed, buckets)
    if buckets:
        log.info("pad_buckets %d: batches padded to %s: %.1f%% pad tokens in the first epoch (to each batch's "
                 "longest text: %.1f%%)", pad_buckets, buckets, 100 * padding,
                 100 * first_epoch_padding(train_lengths, batch_size, seed, None))
    return buckets, {"bucket_lengths": buckets, "padding_fraction": round(padding, 4)}
