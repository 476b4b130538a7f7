"""The published study (docs/results/) says what its committed JSON says: tables and quoted numbers."""

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
STUDY = RESULTS / "minilm-size-sweep"


def _summary() -> dict:
    return json.loads((STUDY / "sweep.json").read_text(encoding="utf-8"))


def _sweep_table():
    spec = importlib.util.spec_from_file_location("sweep_table", ROOT / "scripts" / "sweep_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_numbers(summary: dict) -> set[str]:
    """Every 4-decimal number the JSON can print as: means, interval ends, paired differences."""
    out = set()

    def add(v):
        if isinstance(v, float):
            out.update({f"{v:.4f}", f"{v:+.4f}", f"{abs(v):.4f}"})

    for p in summary["points"]:
        for m in p["methods"].values():
            for s in [m["primary"], *m["per_source"].values()]:
                for k in ("mean", "ci_low", "ci_high"):
                    add((s or {}).get(k))
        for c in p["comparisons"].values():
            for k in ("diff_mean", "ci_low", "ci_high"):
                add(c[k])
    return out


def test_the_published_table_is_generated_from_the_committed_json():
    assert _sweep_table().table(_summary()) in (RESULTS / "README.md").read_text(encoding="utf-8")


def test_every_number_quoted_in_the_summaries_is_in_the_json():
    allowed = _json_numbers(_summary())
    quoted = []
    for doc in (RESULTS / "README.md", ROOT / "README.md"):
        text = doc.read_text(encoding="utf-8")
        block = text.split("<!-- study summary -->")[1].split("<!-- /study summary -->")[0]
        quoted += re.findall(r"[+-−]?\d\.\d{4}\b", block)
    assert quoted, "the summaries quote no number"
    missing = [q for q in quoted if q.replace("−", "-") not in allowed]
    assert not missing, f"quoted but not in sweep.json: {missing}"


def test_the_committed_report_matches_the_json():
    summary, md = _summary(), (STUDY / "sweep_report.md").read_text(encoding="utf-8")
    assert len(summary["points"]) >= 3 and not summary["missing_points"]
    assert all(c["n_pairs"] >= 5 for p in summary["points"] for c in p["comparisons"].values())
    for p in summary["points"]:
        for c in p["comparisons"].values():
            assert f"{c['diff_mean']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" in md
    for path in summary["plots"].values():
        assert (STUDY / path).is_file()
