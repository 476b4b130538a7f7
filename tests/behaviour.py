"""What the commands write for fixed tiny configurations, minus what may differ between two runs of the same code
(timings, memory, placement, paths): the record a refactor must keep. `tests/fixtures/behaviour/` holds it as
written by the code before the refactor of issue 39; `tests/experiments/test_behaviour_kept.py` checks today's code
against it.

Changed on purpose since: issue 43 added the fairness checks, so tuned-compare.json gained `fairness` and its
headline the sentences they give (only those two keys were replaced, from a run of the code that added them).

Regenerate (only when a change of results is intended, and say so in the commit):
    HF_HUB_OFFLINE=1 python -m tests.behaviour
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import yaml

from .conftest import FAST_SEARCH_SPACE

FIXTURES = Path(__file__).parent / "fixtures" / "behaviour"
CASES = {
    # a plain comparison: three pairs (the fewest with a verdict), the base model's row
    "compare": dict(num_runs=3, evaluate_base_model=True),
    # a tuned one: two trials per method, then two pairs with each method's best settings
    "tuned-compare": dict(num_runs=2, tune_trials=2, search_space=FAST_SEARCH_SPACE, hpo_pruner="none"),
}
# what may differ between two runs of the same code on one machine (bench_ray.comparable's list, and paths)
VOLATILE = ("seconds", "per_second", "time", "memory", "rss", "peak", "executor", "environment", "placement",
            "resolved_config")


def comparable(obj, model: str, root: str):
    """obj without VOLATILE keys, the model's path and the folder's named <model> and <tmp>."""
    if isinstance(obj, dict):
        return {k: comparable(v, model, root) for k, v in obj.items() if not any(v_ in k for v_ in VOLATILE)}
    if isinstance(obj, list):
        return [comparable(v, model, root) for v in obj]
    if isinstance(obj, str):
        import re

        text = obj.replace(model, "<model>").replace(root, "<tmp>")
        return re.sub(r"training time [\d.]+x, training memory \(peak RSS above each run's start\) [\d.]+x", "",
                      text)
    return obj


def run_case(name: str, model: str, folder: Path, *args: str) -> dict:
    """The case's comparison.json as the `compare` command writes it (with `args` added), made comparable."""
    from finetune_compare.cli import main

    from .conftest import tiny_config

    cfg = tiny_config(model, folder, output_dir=str(folder / name), **CASES[name])
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["compare", "--config", str(path), "--quiet", *args]) == 0
    comparison = json.loads((folder / name / "comparison.json").read_text())
    return comparable(comparison, model, str(folder))


def differences(expected, actual, where: str = "", rel: float = 1e-6) -> list[str]:
    """Where two comparable records differ (numbers within `rel`: last digits differ between CPUs)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}.{k}: only in one" for k in set(expected) ^ set(actual)]
        for k in set(expected) & set(actual):
            out += differences(expected[k], actual[k], f"{where}.{k}", rel)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items, now {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{where}[{i}]", rel)]
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool):
        same = math.isclose(expected, actual, rel_tol=rel, abs_tol=rel) or (math.isnan(expected) and math.isnan(actual))
        return [] if same else [f"{where}: {expected!r}, now {actual!r}"]
    return [] if expected == actual else [f"{where}: {expected!r}, now {actual!r}"]


def main() -> None:
    from .conftest import make_tiny_bert

    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(make_tiny_bert(Path(tmp) / "tiny-bert"))
        for name in CASES:
            record = run_case(name, model, Path(tmp))
            (FIXTURES / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"wrote {FIXTURES / f'{name}.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
