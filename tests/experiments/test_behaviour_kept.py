"""The commands write what they wrote before the refactor of issue 39 (tests/fixtures/behaviour/, made by
`python -m tests.behaviour` at the commit before it), timings, memory and paths aside. The Ray backend's case is in
test_ray_backend.py (it needs that module's cluster)."""

from __future__ import annotations

import json

import pytest

from ..behaviour import CASES, FIXTURES, differences, run_case

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_command_writes_the_comparison_it_wrote_before(name, tiny_bert, tmp_path):
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    found = differences(expected, run_case(name, tiny_bert, tmp_path))
    assert not found, "\n".join(sorted(found)[:40])


def test_the_comparison_check_finds_a_changed_number_and_a_missing_key():
    expected = json.loads((FIXTURES / "compare.json").read_text())
    changed = json.loads(json.dumps(expected))
    changed["comparisons"]["lora_vs_full"]["primary"]["diff_mean"] += 1e-3
    del changed["headline"]
    found = sorted(differences(expected, changed))
    assert len(found) == 2 and found[0].startswith(".comparisons.lora_vs_full.primary.diff_mean: ")
    assert ".headline: only in one" in found
