"""A three-seed comparison on tiny models: every file and plot, resume, rebuild, and a real browser render."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from finetune_compare.cli import main
from finetune_compare.experiments.commands.compare import ComparisonExperiment

from ..conftest import headless_chromium, tiny_config

pytestmark = pytest.mark.slow

PLOTS = ["learning_curves", "confusion_matrices", "metric_comparison", "efficiency", "errors", "gives_up"]
SECTION_IDS = ["verdict", "setup", "results", "gives_up", "statistics", "efficiency", "search", "plots", "errors", "reproduce"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, tiny_roberta_sentiment):
    tmp = tmp_path_factory.mktemp("cmp")
    cfg = tiny_config(tiny_roberta_sentiment, tmp, num_runs=3, num_epochs=3)
    result = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    return cfg, Path(cfg.output_dir), result


def test_every_file_and_plot(comparison):
    cfg, out, result = comparison
    for name in ("comparison.json", "report.html", "report.md", "data_summary.json"):
        assert (out / name).is_file(), name
    for plot in PLOTS:
        assert (out / "plots" / f"{plot}.png").stat().st_size > 10_000, plot
    for method in ("full", "lora"):
        for seed in (7, 8, 9):
            assert (out / "runs" / method / f"seed-{seed}" / "metrics.json").is_file()
    data = json.loads((out / "comparison.json").read_text())
    assert data["n_runs"] == {"full": 3, "lora": 3} and not data["too_few_runs"]
    assert data["primary_metric"] == "macro_f1" and data["base_is_classifier"]
    cmp = data["comparisons"]["lora_vs_full"]
    prim = cmp["primary"]
    assert prim["n_pairs"] == 3 and len(prim["diffs"]) == 3
    verdict = prim["verdict"]
    assert verdict["kind"] in ("better", "worse", "equivalent", "inconclusive")
    assert verdict["ci_low"] <= prim["diff_mean"] <= verdict["ci_high"] and verdict["se_test"] > 0
    if verdict["kind"] == "inconclusive":
        assert verdict["text"].startswith("No difference detected on macro_f1: lora - full = ")
    tl = prim["test_level"]
    assert [s["seed"] for s in tl["per_seed"]] == [7, 8, 9] and all(0 <= s["mcnemar_p"] <= 1 for s in tl["per_seed"])
    assert prim["aso"]["iterations"] == 1000 and prim["aso"]["eps_min"] is not None
    assert set(cmp["secondary"]) >= {"accuracy", "f1_neutral", "macro_f1_imdb", "accuracy_tweeteval"}
    assert "macro_f1" not in cmp["secondary"] and all("p_holm" in v for v in cmp["secondary"].values())
    assert data["headline"][0].startswith(verdict["text"])
    # the Reproduce block holds the exact commands, runnable as written
    assert f"finetune-compare compare --config {out}/config.yaml --output-dir {out}" in (out / "report.md").read_text()
    assert (out / "config.yaml").is_file()
    assert data["per_method"]["lora"]["macro_f1"]["n"] == 3 and data["per_method"]["lora"]["macro_f1"]["ci_method"] == "t"
    assert data["efficiency"]["lora"]["trainable_params"] < data["efficiency"]["full"]["trainable_params"]
    assert data["error_analysis"]["pair"] == ["lora", "full"]
    assert data["efficiency"]["lora"]["training_attention"] == "eager"  # what ran is what the report says
    md = (out / "report.md").read_text()
    assert "| attention in training (evaluation: SDPA) | eager | eager |" in md
    for title in ("## Verdict", "## Setup", "## Results", "## Statistics", "## Efficiency", "## Plots",
                  "## Error analysis", "Declared primary metric: macro_f1", "Holm-adjusted p", "McNemar exact p",
                  "is already a classifier for these labels"):
        assert title in md


def test_report_mode_rebuilds_from_disk(comparison, capsys):
    _, out, result = comparison
    shutil.rmtree(out / "plots")
    (out / "report.html").unlink()
    assert main(["--mode", "report", "--results", str(out)]) == 0
    assert (out / "report.html").is_file() and all((out / "plots" / f"{p}.png").is_file() for p in PLOTS)
    rebuilt = json.loads((out / "comparison.json").read_text())
    assert rebuilt["per_method"] == json.loads(json.dumps(result["per_method"]))
    assert "Verdict" in capsys.readouterr().out
    assert main(["--mode", "report", "--results", str(out / "nope")]) == 2


def test_resume_retrains_only_the_missing_run(comparison):
    cfg, out, _ = comparison
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed-*/metrics.json")}
    shutil.rmtree(out / "runs" / "lora" / "seed-8")
    ComparisonExperiment(cfg).run_multiple_runs(cfg)
    after = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed-*/metrics.json")}
    changed = [p for p in after if after[p] != before.get(p)]
    assert changed == [out / "runs" / "lora" / "seed-8" / "metrics.json"]


def test_each_pair_draws_its_own_training_data_on_one_test_set(comparison):
    _, out, _ = comparison
    fingerprint = {(m, s): json.loads((out / "runs" / m / f"seed-{s}" / "metrics.json").read_text())["data"]["fingerprint"]
                   for m in ("full", "lora") for s in (7, 8, 9)}
    assert all(fingerprint[("full", s)] == fingerprint[("lora", s)] for s in (7, 8, 9))  # paired: same draw
    assert len({fingerprint[("full", s)] for s in (7, 8, 9)}) == 3  # resample_data_per_run: a draw per pair
    ids = {s: [json.loads(line)["id"] for line in (out / "runs" / "full" / f"seed-{s}" / "predictions.jsonl").open()]
           for s in (7, 8, 9)}
    assert ids[7] == ids[8] == ids[9]


@pytest.mark.skipif(not headless_chromium("x"), reason="headless Chromium not installed (Debian package 'chromium')")
def test_report_renders_in_headless_chromium(comparison, tmp_path):
    _, out, _ = comparison
    flags = headless_chromium(tmp_path / "profile")
    url = (out / "report.html").resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for section in SECTION_IDS:
        assert f'id="{section}"' in dom, f"section {section} missing"
    assert 'data-images-ok="true"' in dom, "an inlined image did not decode"
    # every plot once; the forest plot of what each method gives up in the verdict box and in its own section
    assert dom.count("<img") == len(PLOTS) + 1
    shot = tmp_path / "report.png"
    subprocess.run(flags + ["--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(shot))
    assert pixels.shape[0] == 2000 and float(np.std(pixels)) > 0.05  # not a blank page


@pytest.mark.parametrize("rel, content, why", [
    ("runs/lora/seed-8/metrics.json", b'{"method": "lora", "te', "JSONDecodeError"),
    ("runs/lora/seed-8/metrics.json", b"{}", "missing or wrong type: method, test, params, timing, memory"),
    ("runs/lora/seed-8/metrics.json", b"\x89PNG\x00\xff", "UnicodeDecodeError"),
    ("runs/lora/seed-8/metrics.json", b'{"method": "lora", "seed": 8, "test": {"macro_f1": "high"}, "params": {}, '
                                      b'"timing": {}, "memory": {}}', "test metrics incomplete: macro_f1"),
    ("runs/full/seed-7/history.json", b'{"train": [', "JSONDecodeError"),
    ("runs/full/seed-7/predictions.jsonl", b'{"id": "a", "label": 0, "pre', "JSONDecodeError"),
    ("runs/full/seed-7/predictions.jsonl", b'{"id": "a", "label": 0}\n', "KeyError"),
])
def test_report_over_a_damaged_run_file_is_one_clear_error(comparison, tmp_path, capsys, rel, content, why):
    _, out, _ = comparison
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / rel).write_bytes(content)
    assert main(["--mode", "report", "--results", str(copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: '{copy / rel}' is corrupt (") and why in err, err
    assert err.endswith("delete that run's folder and rerun the same command to retrain it, then rebuild the report")


def test_one_run_report_is_one_line_without_error_bars(comparison, tmp_path, capsys, monkeypatch):
    """Too few runs: the statistics section is one line, bars carry no error bars, efficiency axes start at 0."""
    from matplotlib.container import ErrorbarContainer

    from finetune_compare.analysis import plots

    _, out, _ = comparison
    copy = tmp_path / "one"
    shutil.copytree(out, copy)
    for method in ("full", "lora"):
        for seed in (8, 9):
            shutil.rmtree(copy / "runs" / method / f"seed-{seed}")
    assert main(["report", "--results", str(copy)]) == 2  # never replaced with less unasked
    assert "delete comparison.json to report on the runs that are there" in capsys.readouterr().err
    (copy / "comparison.json").unlink()
    figures = {}
    original = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.setdefault(path.stem, fig) and original(fig, path))
    assert main(["report", "--results", str(copy)]) == 0
    md = (copy / "report.md").read_text()
    stats = md.split("## Statistics")[1].split("## Efficiency")[0]
    assert "Too few paired runs for statistics" in stats and "|" not in stats  # one line, no table
    assert "per million trainable parameters" not in md
    bars = figures["metric_comparison"].axes[0]
    assert not [c for c in bars.containers if isinstance(c, ErrorbarContainer)]
    assert "one run: no error bars" in figures["metric_comparison"]._suptitle.get_text()
    time_ax, memory_ax = figures["efficiency"].axes[1:3]
    assert time_ax.get_xlim()[0] == 0 and memory_ax.get_xlim()[0] == 0 and "(axis from 0)" in memory_ax.get_title()
