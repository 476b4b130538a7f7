"""The report's building block: a heading, paragraph, table, image, code or list, and the report's sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECTIONS = {
    "verdict": "Verdict", "setup": "Setup", "results": "Results", "gives_up": "What each method gives up",
    "statistics": "Statistics",
    "efficiency": "Efficiency", "search": "Hyperparameter search", "plots": "Plots", "errors": "Error analysis", "reproduce": "Reproduce",
}


@dataclass
class Block:
    kind: str  # h2 | p | table | img | code | list
    content: Any
    anchor: str | None = None
    caption: str = ""
