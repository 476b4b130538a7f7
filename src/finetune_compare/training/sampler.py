"""Length-grouped batches in random order.

Padding is set by the longest text in a batch, and one long IMDB review pads a whole
batch of tweets: random batches of the 3-source mix were measured at ~52% padding.
Grouping by length removes most of it. The Trainer's own `group_by_length` sorts
batches long-to-short inside each megabatch, so the model sees one source (and its
label mix) for many consecutive steps; that was measured to drop accuracy to chance.
Here, batches are built from length-sorted megabatches and then *all batches are
shuffled*, so consecutive steps come from random sources while each batch stays
tightly padded.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedShuffledSampler(Sampler[int]):
    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, megabatch_batches: int = 64):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.megabatch = batch_size * megabatch_batches  # a multiple of batch_size: batches never straddle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        full, partial = [], []
        for start in range(0, len(perm), self.megabatch):
            chunk = sorted(perm[start:start + self.megabatch], key=lambda i: self.lengths[i])
            for k in range(0, len(chunk), self.batch_size):
                batch = chunk[k:k + self.batch_size]
                (full if len(batch) == self.batch_size else partial).append(batch)
        order = torch.randperm(len(full), generator=g).tolist()
        # the one short batch (if any) goes last so the DataLoader's fixed-size
        # chunks of this flat index stream coincide with our batches
        return [full[i] for i in order] + partial

    def __iter__(self) -> Iterator[int]:
        batches = self.batches()
        self.epoch += 1  # a new order next time even if the Trainer never calls set_epoch
        for batch in batches:
            yield from batch


def padding_fraction(lengths: Sequence[int], batches: list[list[int]], pad_to=None) -> float:
    """Share of pad tokens when every batch is padded to its longest member (or to `pad_to(longest)`)."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum((pad_to or int)(max(lengths[i] for i in b)) * len(b) for b in batches)
    return 1 - real / padded if padded else 0.0


def round_up(length: int, multiple: int) -> int:
    """`length` padded up to a multiple of `multiple` (the collator's pad_to_multiple_of)."""
    return -(-length // multiple) * multiple


def step_token_counts(lengths: Sequence[int], batch_size: int, accumulation: int, seed: int, grouping: str,
                      steps: int, pad_to=None) -> list[int]:
    """Padded tokens of each of the first `steps` optimizer steps of a run (epoch after epoch): its own batches
    with length grouping (this sampler, same seed), a seeded shuffle of the same distribution with random
    batches. `pad_to(longest)`: the length the collator pads a batch to (default: its longest row). A cost plan
    scales a probe's step times by these."""
    def padded(batch: list[int]) -> int:
        return (pad_to or int)(max(lengths[i] for i in batch)) * len(batch)

    sampler = LengthGroupedShuffledSampler(lengths, batch_size, seed)
    out: list[int] = []
    epoch = 0
    while len(out) < steps and lengths:
        if grouping == "length":
            sampler.set_epoch(epoch)
            batches = sampler.batches()
        else:
            perm = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
            batches = [perm[k:k + batch_size] for k in range(0, len(perm), batch_size)]
        for k in range(0, len(batches), accumulation):  # the last step of an epoch may hold fewer micro-batches
            out.append(sum(padded(b) for b in batches[k:k + accumulation]))
        epoch += 1
    return out[:steps]
