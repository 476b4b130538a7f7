"""Multi-process (torchrun / accelerate launch) awareness: only rank 0 writes results and tracks.

Every rank trains (the Trainer runs DDP) and evaluates (the Trainer gathers predictions),
so they all hold the same metrics; rank 0 alone writes files, reports and tracker events.
"""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0
