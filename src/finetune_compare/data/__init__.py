"""Data: sources, label mapping, cleaning, leakage removal, balanced sampling, tokenisation."""

from .build import DataBundle, Example, build_data
from .sources import CLASS_NAMES, SOURCES

__all__ = ["CLASS_NAMES", "SOURCES", "DataBundle", "Example", "build_data"]
