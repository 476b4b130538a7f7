"""The label schema: our classes, in id order. A leaf: every stage (data, models, training, analysis) reads it.

Sources map their native labels onto these names (data/sources.py); model heads are aligned to them
by name (models/hf.py); metrics, plots and predictions name classes with them.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("negative", "neutral", "positive")
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
