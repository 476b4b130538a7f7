"""Sweep mode: a grid of paired comparisons, resumable per run, with a report rebuilt from disk."""

import json

import pytest

from finetune_compare.cli import main
from finetune_compare.config import Config, load_config, parse_sweep
from finetune_compare.errors import ConfigError
from finetune_compare.experiments.commands.sweep import run_sweep, sweep_points

from ..conftest import headless_chromium, tiny_config


@pytest.fixture(scope="module")
def finished_sweep(tiny_bert, tmp_path_factory):
    """2 points x 2 seeds x 2 methods on the tiny random BERT, at one declared budget of 12 optimizer steps."""
    tmp = tmp_path_factory.mktemp("sweep")
    config = tiny_config(tiny_bert, tmp, num_runs=2, lora_learning_rate=1e-2, sweep={"samples_per_class": [40, 50]},
                         budget_unit="steps", budget=12, output_dir=str(tmp / "sweep"))
    summary = run_sweep(config)
    return config, summary


@pytest.mark.slow
def test_sweep_writes_points_json_and_reports(finished_sweep):
    config, summary = finished_sweep
    out = config.output_dir
    names = ["samples_per_class=40", "samples_per_class=50"]
    assert [p["name"] for p in summary["points"]] == names and summary["missing_points"] == []
    for name in names:
        point = f"{out}/points/{name}"
        for method in ("full", "lora"):
            for seed in (7, 8):
                assert json.load(open(f"{point}/runs/{method}/seed-{seed}/metrics.json"))["method"] == method
        assert open(f"{point}/config.yaml").read().count(f"samples_per_class: {name.split('=')[1]}") == 1
        assert "report.html" in __import__("os").listdir(point)
    disk = json.load(open(f"{out}/sweep.json"))
    assert disk["keys"] == ["samples_per_class"] and disk["grid"] == {"samples_per_class": [40, 50]}
    comparison = disk["points"][0]["comparisons"]["lora_vs_full"]
    assert comparison["n_pairs"] == 2 and comparison["kind"] == "too_few"
    assert disk["answer"] and "samples_per_class" in disk["answer"][0]
    # the sweep's per-point numbers are the point's own comparison.json
    point_cmp = json.load(open(f"{out}/points/samples_per_class=50/comparison.json"))
    assert disk["points"][1]["methods"]["lora"]["primary"]["mean"] == point_cmp["per_method"]["lora"]["macro_f1"]["mean"]
    html = open(f"{out}/sweep_report.html").read()
    assert html.count("data:image/png;base64,") == 3 and "Verdict per point" in html
    md = open(f"{out}/sweep_report.md").read()
    assert "plots/sweep_primary.png" in md and "samples_per_class=40" in md
    # every point's cost row carries its method's budget: the declared one and what the runs took
    assert disk["points"][0]["methods"]["full"]["budget"] == {"unit": "steps", "value": 12}
    assert md.count("| 12 optimizer steps (ran ") == 4  # 2 points x 2 methods


@pytest.mark.slow
def test_rerun_retrains_only_the_deleted_run(finished_sweep, caplog):
    import shutil

    config, _ = finished_sweep
    point = f"{config.output_dir}/points/samples_per_class=40"
    kept = open(f"{point}/runs/full/seed-7/metrics.json").read()
    shutil.rmtree(f"{point}/runs/lora/seed-8")
    caplog.set_level("INFO")
    summary = run_sweep(config)
    trained = [r.getMessage() for r in caplog.records if "training on" in r.getMessage()]
    assert len(trained) == 1 and trained[0].startswith("lora seed 8")
    assert open(f"{point}/runs/full/seed-7/metrics.json").read() == kept
    assert summary["points"][0]["comparisons"]["lora_vs_full"]["n_pairs"] == 2


@pytest.mark.slow
def test_report_mode_rebuilds_the_sweep_report(finished_sweep, capsys):
    import os

    config, _ = finished_sweep
    os.remove(f"{config.output_dir}/sweep_report.html")
    assert main(["report", "--results", config.output_dir]) == 0
    assert os.path.isfile(f"{config.output_dir}/sweep_report.html")
    assert "Answer" in capsys.readouterr().out


def test_grid_is_cartesian_with_first_key_slowest(tmp_path, tiny_bert):
    config = tiny_config(tiny_bert, tmp_path, sweep={"samples_per_class": [40, 50], "lora_r": [2, 4]})
    points = sweep_points(config)
    assert [v for v, _ in points] == [{"samples_per_class": 40, "lora_r": 2}, {"samples_per_class": 40, "lora_r": 4},
                                      {"samples_per_class": 50, "lora_r": 2}, {"samples_per_class": 50, "lora_r": 4}]
    assert points[3][1].lora_r == 4 and points[3][1].sweep == {}
    assert points[3][1].output_dir.endswith("points/samples_per_class=50,lora_r=4")


def test_a_point_whose_data_cannot_run_fails_before_any_training(tmp_path, tiny_bert):
    from finetune_compare.errors import DataError

    config = tiny_config(tiny_bert, tmp_path, sweep={"samples_per_class": [40, 30]})
    with pytest.raises(DataError, match="validation split is too small"):
        run_sweep(config)
    assert not (tmp_path / "out").exists()


def test_values_are_read_as_their_key_reads_them():
    assert parse_sweep(["learning_rate=1e-4,3e-4", "lora_r=4,8"]) == {"learning_rate": ["1e-4", "3e-4"],
                                                                         "lora_r": [4, 8]}
    assert Config(sweep={"learning_rate": ["1e-4", 3e-4]}).sweep == {"learning_rate": [1e-4, 3e-4]}
    # commas inside a list value belong to it
    assert parse_sweep(["lora_target_modules=[query,value],[query]"]) == {
        "lora_target_modules": [["query", "value"], ["query"]]}
    with pytest.raises(ConfigError, match="unbalanced brackets or quotes"):
        parse_sweep(["lora_target_modules=[query,value"])


@pytest.mark.parametrize("sweep, message", [
    ({"samples_per_clas": [10, 20]}, "unknown sweep key 'samples_per_clas'; did you mean 'samples_per_class'?"),
    ({"samples_per_class": [100, -5]}, "sweep key 'samples_per_class', value -5: config key 'samples_per_class': "
                                       "must be >= 1"),
    ({"samples_per_class": []}, "sweep key 'samples_per_class': expected a non-empty list of values"),
    ({"output_dir": ["a", "b"]}, "sweep key 'output_dir' cannot vary per point: each point's folder is set by the "
                                 "sweep"),
    ({"data_dir": ["a", "b"]}, "sweep key 'data_dir' cannot vary per point: the points share one loaded"),
    ({"lora_r": [4, 4]}, "sweep key 'lora_r': value 4 is listed twice"),
    ({"lora_r": [4], "num_epochs": [1], "batch_size": [8]}, "config key 'sweep': at most 2 keys"),
])
def test_bad_sweep_is_one_clear_error(sweep, message):
    with pytest.raises(ConfigError) as err:
        Config(sweep=sweep)
    assert message in str(err.value)


@pytest.mark.parametrize("args, message", [
    (["sweep", "--sweep", "samples_per_class=10,,20"], "--sweep 'samples_per_class=10,,20': an empty value"),
    (["sweep", "--sweep", "samples_per_class"], "--sweep expects key=value1,value2"),
    (["sweep", "--sweep", "output_dir=a,b"], "sweep key 'output_dir' cannot vary per point"),
    (["sweep", "--sweep", "num_epochs=0,1"], "sweep key 'num_epochs', value 0"),
    (["sweep"], "the sweep command needs a grid"),
    (["compare", "--set", "sweep={lora_r: [4, 8]}"], "only `finetune-compare sweep` runs"),
])
def test_cli_rejects_bad_sweeps_before_any_training(args, message, tmp_path, capsys, tiny_bert):
    code = main([*args, "--set", f"model_name={tiny_bert}", "--set", "data_source=embedded",
                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_yaml_grid_and_cli_grid(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("sweep:\n  samples_per_class: [100, 400]\n")
    assert load_config(str(path)).sweep == {"samples_per_class": [100, 400]}


@pytest.mark.slow
def test_sweep_report_renders_in_headless_chromium(finished_sweep, tmp_path):
    import subprocess
    from pathlib import Path

    flags = headless_chromium(tmp_path / "profile")
    if not flags:
        pytest.skip("headless Chromium not installed (Debian package 'chromium')")
    config, _ = finished_sweep
    url = Path(config.output_dir, "sweep_report.html").resolve().as_uri()
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    for section in ("answer", "points", "plots", "sources", "cost", "setup", "reproduce"):
        assert f'id="{section}"' in dom, f"section {section} missing"
    assert 'data-images-ok="true"' in dom and dom.count("<img") == 3


def test_a_bad_sweep_is_named_as_such_beside_method_overrides():
    """The per-method check must not re-check the grid and report its error as a method_overrides one."""
    with pytest.raises(ConfigError) as err:
        Config(method_overrides={"lora": {"num_epochs": 4}}, sweep={"output_dir": ["a", "b"]})
    assert str(err.value).startswith("sweep key 'output_dir' cannot vary per point")


def test_a_point_without_enough_pairs_is_not_a_change_of_verdict():
    from finetune_compare.analysis.sweep_report import answer_lines

    def point(n, kind, d):
        return {"values": {"samples_per_class": n}, "comparisons": {"lora_vs_full": {
            "a": "lora", "b": "full", "kind": kind, "diff_mean": d, "n_pairs": 2 if kind == "too_few" else 5}}}

    summary = {"keys": ["samples_per_class"], "equivalence_margin": 0.01, "primary_metric": "macro_f1",
               "comparisons": ["lora_vs_full"], "reference": "full",
               "points": [point(70, "inconclusive", 0.04), point(220, "too_few", -0.05), point(700, "inconclusive",
                                                                                                 -0.01)]}
    (line,) = answer_lines(summary)
    assert line.startswith("lora vs full: the verdict is the same at every samples_per_class with a verdict (70, "
                           "700): no difference detected; no verdict yet (too few pairs) at samples_per_class=220 "
                           "(2 pairs).")
    assert answer_lines({**summary, "points": [], "comparisons": []}) == ["No point has finished runs yet."]
    assert answer_lines({**summary, "points": [{"values": {}, "comparisons": {}}], "comparisons": []}) == [
        "No point has runs of the reference method (full) and another method to compare it with."]
