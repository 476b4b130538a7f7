"""The pairs of a comparison as both executors see them (local and Ray): which runs of each pair are still to train,
and the score line a finished run shows. Kept apart from the executors so that neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass

from .run import RunContext, load_completed, run_dir_for


@dataclass(frozen=True)
class PairPlan:
    """Pair k of a comparison: its seed and the methods whose run is not complete yet."""
    k: int
    seed: int
    to_train: tuple[str, ...]


def plan_pairs(ctx: RunContext, methods: list[str], seeds: list[int]) -> list[PairPlan]:
    return [PairPlan(k, seed, tuple(m for m in methods if load_completed(run_dir_for(ctx.output_dir, m, seed)) is None))
            for k, seed in enumerate(seeds)]


def score_text(ctx: RunContext, metrics: dict) -> str:
    metric = ctx.config.primary_metric
    return f"test {metric} {metrics['test'][metric]:.4f}"
