"""A sweep's grid: its points in order and each point's folder name and label. A leaf, so that the commands (which
plan the points) and the sweep report (which reads them back) name them the same way."""

from __future__ import annotations

import itertools


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every point of the grid as {key: value}, in the order given (first key slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def fmt_value(v) -> str:
    return "+".join(map(str, v)) if isinstance(v, list) else str(v)


def point_name(values: dict) -> str:
    """The point's folder name, e.g. 'samples_per_class=400' or 'samples_per_class=400,lora_r=8'."""
    return ",".join(f"{k}={fmt_value(v).replace('/', '_').replace(' ', '')}" for k, v in values.items())


def point_label(values: dict) -> str:
    """The point as tables and the terminal show it, e.g. 'samples_per_class=400, lora_r=8'."""
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in values.items())
