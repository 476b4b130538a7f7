"""Runs that did not learn, found from their files, so a verdict never reads as a finding about methods when the
models barely trained (a 2-step budget, a learning rate far too low).

Three signs, each stated with its rule:
- near chance: test accuracy not above the majority class's share by two binomial standard errors;
- no gain: the validation score never rose above its first evaluation's (at least two evaluations);
- identical predictions: a method predicted the same class as the reference on every test example of a pair.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..evaluation.run_record import RunRecord
from ..layout import HISTORY, PREDICTIONS, Layout
from .run_files import read_history, read_predictions


def near_chance(test: dict) -> str | None:
    support = [c.get("support", 0) for c in (test.get("per_class") or {}).values()]
    n = test.get("n") or sum(support)
    if not n or not support:
        return None
    majority = max(support) / n
    bound = majority + 2 * math.sqrt(majority * (1 - majority) / n)
    if test["accuracy"] <= bound:
        return (f"test accuracy {test['accuracy']:.4f} is near chance (not above the majority class's share "
                f"{majority:.4f} by two standard errors, {bound:.4f})")
    return None


def no_gain(run_dir: Path, metric: str = "macro_f1") -> str | None:
    if not (run_dir / HISTORY).is_file():  # a simulated or imported run: no learning curve to read
        return None
    evals = [e for e in read_history(run_dir / HISTORY)["eval"] if isinstance(e, dict) and metric in e]
    if len(evals) < 2:
        return None
    first, later = evals[0][metric], max(e[metric] for e in evals[1:])
    if later <= first:
        return (f"validation {metric} never rose above its first evaluation's ({first:.4f} at step "
                f"{evals[0].get('step')}): no sign that training improved it")
    return None


def _predicted(run_dir: Path) -> dict[str, int] | None:
    if not (run_dir / PREDICTIONS).is_file():
        return None
    return {i: row[1] for i, row in read_predictions(run_dir / PREDICTIONS).items()}


def not_learned(output_dir: Path, runs: dict[str, dict[int, RunRecord]], reference: str) -> list[dict]:
    """[{method, seed, problems}] for every finished run that shows a sign of not having learned."""
    layout = Layout(output_dir)
    found: dict[tuple[str, int], list[str]] = {}
    for method, by_seed in sorted(runs.items()):
        for seed, record in sorted(by_seed.items()):
            problems = [p for p in (near_chance(record.test), no_gain(layout.run_dir(method, seed))) if p]
            if problems:
                found[(method, seed)] = problems
    for seed in sorted(runs.get(reference, {})):
        ours = _predicted(layout.run_dir(reference, seed))
        for method in sorted(m for m in runs if m != reference and seed in runs[m]):
            if ours is not None and ours == _predicted(layout.run_dir(method, seed)):
                found.setdefault((method, seed), []).append(
                    f"predicted the same class as {reference} seed {seed} on every test example")
    return [{"method": m, "seed": s, "problems": p} for (m, s), p in sorted(found.items())]


def learning_caution(comparison: dict, flagged: list[dict] | None) -> str | None:
    """One sentence for a verdict that rests on runs that did not learn: its interval and its power statement then
    describe barely trained models, not the methods."""
    seeds = set(comparison["primary"].get("seeds") or [])
    hit = [f for f in flagged or [] if f["method"] in (comparison["a"], comparison["b"]) and f["seed"] in seeds]
    if not hit:
        return None
    return (f"Caution: {len(hit)} of the runs this verdict uses show signs of not having learned (near-chance "
            "scores, no gain after the first evaluation, or predictions identical across methods; listed under "
            "Warnings), so its interval and its power statement describe barely trained models, not the methods: "
            "train longer or check the learning rates before reading it as a finding.")
