"""The sentiment preset's classes, in id order. A leaf: every stage can read it.

The preset's sources map their native labels onto these names (data/sources.py). Your own data brings
its own names (data/files.py); the data bundle carries whichever apply (`DataBundle.labels`), and the model
head, metrics, plots, predictions and saved models take them from there. These names are also the fallback
for results recorded before labels were.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("negative", "neutral", "positive")
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
