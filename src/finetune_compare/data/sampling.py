"""Balanced sampling across sources, the stratified validation split, and augmentation.

Mixing policies (how one class's quota is shared by the sources that have that class):
- `equal`: as equal per source as the pools allow. Sources are filled from the
  smallest pool up; a source that cannot give its share gives all it has and the
  rest is shared among the others (water-filling).
- `proportional`: in proportion to each source's pool size for that class
  (largest-remainder rounding), i.e. the natural mix of the data.
"""

from __future__ import annotations

import math
from typing import Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def allocate(quota: int, available: dict[str, int], policy: str) -> dict[str, int]:
    """How many examples each source contributes to a quota, never more than it has."""
    alloc = {s: 0 for s in available}
    sources = sorted((s for s, n in available.items() if n > 0), key=lambda s: (available[s], s))
    if not sources:
        return alloc
    total = sum(available[s] for s in sources)
    if quota >= total:
        return {s: available[s] for s in available}
    if policy == "equal":
        remaining = quota
        for i, s in enumerate(sources):
            take = min(available[s], remaining // (len(sources) - i))
            alloc[s] = take
            remaining -= take
        # floor division can leave a few; hand them to sources with room, largest first
        for s in sorted(sources, key=lambda s: (-(available[s] - alloc[s]), s)):
            if remaining == 0:
                break
            extra = min(remaining, available[s] - alloc[s])
            alloc[s] += extra
            remaining -= extra
        return alloc
    if policy == "proportional":
        exact = {s: quota * available[s] / total for s in sources}
        for s in sources:
            alloc[s] = math.floor(exact[s])
        left = quota - sum(alloc.values())
        for s in sorted(sources, key=lambda s: (-(exact[s] - alloc[s]), s))[:left]:
            alloc[s] += 1
        return alloc
    raise ValueError(f"unknown mixing policy {policy!r}")


def draw(rng: np.random.Generator, pool: Sequence[T], n: int, upsample: bool = False) -> list[T]:
    """`n` items without replacement; with `upsample`, the shortfall is drawn with replacement."""
    if n <= len(pool):
        idx = rng.choice(len(pool), size=n, replace=False)
        return [pool[i] for i in sorted(idx)]
    if not upsample:
        return list(pool)
    extra = rng.choice(len(pool), size=n - len(pool), replace=True)
    return list(pool) + [pool[i] for i in extra]


def stratified_split(rng: np.random.Generator, items: Sequence[T], keys: Sequence, fraction: float):
    """Split items into (rest, held_out) with `fraction` of every stratum held out.

    Written out (instead of sklearn's train_test_split) because strata with a single
    member are normal here (a source with few examples of a class) and must simply
    stay in training rather than abort the split.
    """
    strata: dict = {}
    for i, key in enumerate(keys):
        strata.setdefault(key, []).append(i)
    rest, held = [], []
    for key in sorted(strata, key=str):
        idx = strata[key]
        perm = [idx[j] for j in rng.permutation(len(idx))]
        n_held = int(round(len(idx) * fraction))
        n_held = min(n_held, len(idx) - 1) if len(idx) > 1 else 0
        held.extend(perm[:n_held])
        rest.extend(perm[n_held:])
    return [items[i] for i in sorted(rest)], [items[i] for i in sorted(held)]


def augment_text(rng: np.random.Generator, text: str, p_drop: float = 0.1) -> str:
    """Word dropout plus one adjacent swap: cheap, label-preserving noise (EDA-style)."""
    words = text.split(" ")
    if len(words) < 3:
        return text
    kept = [w for w in words if rng.random() >= p_drop] or words
    if len(kept) >= 2:
        i = int(rng.integers(0, len(kept) - 1))
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)
