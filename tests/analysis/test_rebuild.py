"""`report --results`: a rebuild never replaces a result with less, and folders that are not ours never crash it."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from finetune_compare.analysis.aggregate import write_comparison
from finetune_compare.analysis.simulation import SCENARIOS, simulate_predictions, write_experiment
from finetune_compare.analysis.verdict import decide
from finetune_compare.cli import main

STUDY = Path(__file__).resolve().parents[2] / "docs" / "results" / "minilm-size-sweep"


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".finetune-compare.lock"}


@pytest.fixture
def study_copy(tmp_path):
    return Path(shutil.copytree(STUDY, tmp_path / "study"))


@pytest.mark.slow
def test_a_published_sweep_without_runs_is_restated_from_its_stored_statistics(study_copy, capsys):
    before = json.loads((study_copy / "sweep.json").read_text())
    assert main(["report", "--results", str(study_copy)]) == 0
    after = json.loads((study_copy / "sweep.json").read_text())
    assert [p["name"] for p in after["points"]] == [p["name"] for p in before["points"]] and not after["missing_points"]
    for point in after["points"]:
        cmp = json.loads((study_copy / point["folder"] / "comparison.json").read_text())
        prim = cmp["comparisons"]["lora_vs_full"]["primary"]
        expected = decide("lora", "full", "macro_f1", prim, prim["test_level"], 0.01)
        assert prim["verdict"]["ci_low"] == pytest.approx(expected["ci_low"])
        assert point["comparisons"]["lora_vs_full"]["ci_low"] == pytest.approx(expected["ci_low"])
        assert (study_copy / point["folder"] / "report.md").is_file()
    assert "No difference detected" in (study_copy / "sweep_report.md").read_text()


@pytest.mark.parametrize("remove", ["points/samples_per_class=700", "points",
                                    "points/samples_per_class=70/comparison.json"])
def test_a_sweep_rebuild_that_would_drop_points_is_refused_and_changes_nothing(study_copy, capsys, remove):
    target = study_copy / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    before = _snapshot(study_copy)
    assert main(["report", "--results", str(study_copy)]) == 2
    err = capsys.readouterr().err
    assert "sweep.json holds point(s)" in err and "rebuilding would drop them" in err
    assert _snapshot(study_copy) == before


def _comparison(tmp_path) -> Path:
    y, source, preds = simulate_predictions(SCENARIOS["test-noise"], np.random.default_rng(0), 3, 0.0, 300)
    folder = write_experiment(tmp_path / "cmp", y, source, preds)
    write_comparison(folder, supporting_evidence=False)
    return folder


def test_a_comparison_rebuild_that_lost_runs_is_refused_and_changes_nothing(tmp_path, capsys):
    folder = _comparison(tmp_path)
    shutil.rmtree(folder / "runs" / "lora" / "seed-43")
    before = _snapshot(folder)
    assert main(["report", "--results", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "built from runs that are no longer there (lora seed 43)" in err and "nothing was changed" in err
    assert _snapshot(folder) == before


@pytest.mark.slow
def test_folders_that_are_not_ours_are_ignored_with_a_warning(tmp_path, capsys, caplog):
    folder = _comparison(tmp_path)
    shutil.copytree(folder / "runs" / "lora" / "seed-42", folder / "runs" / "lora" / "seed-42-old")
    shutil.copytree(folder / "runs" / "lora", folder / "runs" / "lora-backup")
    (folder / "runs" / "lora" / "notes.txt").write_text("mine")
    (folder / "report.html").unlink(missing_ok=True)
    assert main(["report", "--results", str(folder)]) == 0
    cmp = json.loads((folder / "comparison.json").read_text())
    assert cmp["runs"] == {"full": [42, 43, 44], "lora": [42, 43, 44]}
    logged = caplog.text
    assert "seed-42-old: not a run folder of finetune-compare" in logged and "notes.txt" in logged
    assert "lora-backup/seed-42/metrics.json: it records lora seed 42, not the folder's lora-backup" in logged


@pytest.mark.parametrize("lost", ["tuning", "preregistration"])
def test_a_rebuild_that_lost_the_tuning_or_the_preregistration_is_refused(tmp_path, capsys, lost):
    """A tuned comparison whose optimize/ folder was removed must not be rewritten as 'No search in this folder'."""
    folder = _comparison(tmp_path)
    cmp = json.loads((folder / "comparison.json").read_text())
    cmp["tuning" if lost == "tuning" else "preregistration"] = (
        {"lora": {"trials": 8}} if lost == "tuning" else {"primary_metric": "macro_f1"})
    (folder / "comparison.json").write_text(json.dumps(cmp))
    before = _snapshot(folder)
    assert main(["report", "--results", str(folder)]) == 2
    err = capsys.readouterr().err
    what = (f"the tuning study of lora ({folder / 'optimize' / 'lora' / 'summary.json'})" if lost == "tuning"
            else f"the pre-registration ({folder / 'preregistration.json'})")
    assert err == (f"error: '{folder}': its comparison.json was built with {what}, which is no longer there; "
                   "rebuilding would replace it with less: restore it, or delete comparison.json to report on what "
                   "is there (nothing was changed)\n")
    assert _snapshot(folder) == before
