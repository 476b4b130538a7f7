"""What each method gives up, end to end (folders in, comparison.json out): a small base classifier is trained on
one source and saved; methods are then compared on another source with the first held out, so the base row's
score on the held-out source is what the checkpoint could do there, and each method's change from it is its
forgetting."""

import json
from pathlib import Path

import pytest

from finetune_compare import ComparisonExperiment
from finetune_compare.analysis.aggregate import build_comparison
from finetune_compare.analysis.gives_up import gives_up_records

from ..conftest import tiny_config


@pytest.fixture(scope="module")
def held_out_study(tmp_path_factory, tiny_roberta):
    tmp = tmp_path_factory.mktemp("gives-up")
    # the "checkpoint": a tiny classifier trained briefly on tweets only, saved with its head and label names
    pre = tiny_config(tiny_roberta, tmp / "pre", methods=["full"], sources=["tweeteval"], save_model=True,
                      num_epochs=3)
    ComparisonExperiment(pre).run_multiple_runs(pre)
    checkpoint = Path(pre.experiment.output_dir) / "runs" / "full" / "seed-7" / "model"
    # then: full fine-tuning at learning rate 0 (the checkpoint unchanged) against LoRA, on movie phrases, with the
    # tweets held out of training and validation
    cfg = tiny_config(str(checkpoint), tmp, methods=["full", "lora"], sources=["sst5", "tweeteval"],
                      holdout_sources=["tweeteval"], learning_rate=0.0, head_learning_rate=0.0, num_runs=3,
                      lora_learning_rate=1e-2, reference="full")
    result = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    return Path(cfg.experiment.output_dir), result


@pytest.mark.slow
def test_forgetting_is_measured_against_the_base_row_and_an_unchanged_model_forgets_nothing(held_out_study):
    out, result = held_out_study
    base = json.loads((out / "runs" / "base" / "metrics.json").read_text())
    assert base["test"]["domain"]["held_out"] == ["tweeteval"]
    base_score = base["test"]["domain"]["out_of_domain"]["macro_f1"]
    forgetting = result["gives_up"]["forgetting"]
    assert forgetting["base"] == base_score and forgetting["metric"] == "macro_f1_out_of_domain"
    # learning rate 0: the checkpoint as it was, so its change from base is exactly 0 on every seed
    assert forgetting["methods"]["full"]["diffs"] == [0.0, 0.0, 0.0]
    assert not forgetting["methods"]["full"]["detected"]
    # LoRA's change: its own out-of-domain score minus the base row's, seed by seed
    for seed, diff in zip(forgetting["methods"]["lora"]["seeds"], forgetting["methods"]["lora"]["diffs"]):
        run = json.loads((out / "runs" / "lora" / f"seed-{seed}" / "metrics.json").read_text())
        assert diff == pytest.approx(run["test"]["domain"]["out_of_domain"]["macro_f1"] - base_score)
    # the methods are compared on what they kept by their out-of-domain difference, which equals the difference
    # of their changes from base (one base score on one test set)
    ood = next(r for r in result["gives_up"]["comparisons"]["lora_vs_full"] if r["metric"].endswith("out_of_domain"))
    assert ood["diff_mean"] == pytest.approx(forgetting["methods"]["lora"]["diff_mean"]
                                             - forgetting["methods"]["full"]["diff_mean"])
    assert ood["interval"].startswith("95% t-interval over pairs with the test set's shared sampling variance")


@pytest.mark.slow
def test_drift_reads_cka_one_and_no_intruders_for_an_unchanged_model_and_more_for_a_trained_one(held_out_study):
    out, result = held_out_study
    for seed in (7, 8, 9):
        full = json.loads((out / "runs" / "full" / f"seed-{seed}" / "metrics.json").read_text())["drift"]
        assert full["cka"]["per_layer"] == pytest.approx([1.0] * len(full["cka"]["per_layer"]), abs=1e-9)
        assert full["intruders"]["total"] == 0 and full["intruders"]["matrices_changed"] == 0
        lora = json.loads((out / "runs" / "lora" / f"seed-{seed}" / "metrics.json").read_text())["drift"]
        assert lora["intruders"]["matrices_changed"] > 0 and lora["cka"]["last"] < 1.0
    drift = result["gives_up"]["drift"]
    assert drift["methods"]["full"]["cka_last"]["mean"] == pytest.approx(1.0, abs=1e-9)
    cka_row = next(r for r in result["gives_up"]["comparisons"]["lora_vs_full"] if r["metric"] == "cka_last")
    assert cka_row["diff_mean"] < 0 and cka_row["interval"].startswith("95% paired t-interval")


@pytest.mark.slow
def test_the_user_sees_in_and_out_of_domain_lines_a_section_and_a_forest_plot(held_out_study):
    out, result = held_out_study
    lines = result["gives_up"]["lines"]["lora_vs_full"]
    assert lines[0].startswith("In domain (the sources trained on): lora - full = ")
    assert lines[1].startswith("Out of domain (held out: TweetEval): lora - full = ")
    assert "Out of domain (held out: TweetEval)" in result["headline"][0]
    report = (out / "report.md").read_text()
    assert "## What each method gives up" in report and "plots/gives_up.png" in report
    assert "Forgetting: each method's out-of-domain macro_f1 minus the base checkpoint's" in report
    assert (out / "plots" / "gives_up.png").stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert "href='#gives_up'" in html
    # the same figures reach comparison.csv (per-run scores) and the trackers' verdict records
    header = (out / "comparison.csv").read_text().splitlines()[0]
    assert "macro_f1_out_of_domain" in header and "macro_f1_in_domain" in header
    records = gives_up_records(result["gives_up"])
    assert {"lora_vs_full.macro_f1_out_of_domain", "lora_vs_base.macro_f1_out_of_domain",
            "full_vs_base.macro_f1_out_of_domain"} <= set(records)


@pytest.mark.slow
def test_a_rebuild_from_the_folders_gives_the_same_figures(held_out_study):
    out, result = held_out_study
    again = build_comparison(out)
    assert again["gives_up"] == result["gives_up"]


def test_a_report_without_the_section_does_not_link_to_it(tmp_path):
    """A comparison without held-out sources or drift (drift: false, or folders written before it) has no "What
    each method gives up" section, and its navigation does not link one."""
    from finetune_compare.analysis.render import render_html
    from finetune_compare.analysis.report_blocks import Block

    html = render_html([Block("h2", "Verdict", "verdict"), Block("p", "x")])
    assert "#gives_up" not in html and "href='#verdict'" in html


@pytest.mark.slow
def test_a_leave_one_source_out_sweep_reports_each_point_s_out_of_domain_figures(tmp_path, tiny_roberta):
    import yaml

    from finetune_compare.cli import main

    cfg = tiny_config(tiny_roberta, tmp_path, num_epochs=1, output_dir=str(tmp_path / "loso"))
    path = tmp_path / "loso.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["sweep", "--config", str(path), "--sweep", "holdout_sources=imdb,tweeteval", "--quiet"]) == 0
    sweep = json.loads((tmp_path / "loso" / "sweep.json").read_text())
    assert [p["held_out"] for p in sweep["points"]] == [["imdb"], ["tweeteval"]]
    for p in sweep["points"]:
        figures = [r["metric"] for r in p["gives_up"]["lora_vs_full"]]
        assert figures[:2] == ["macro_f1_in_domain", "macro_f1_out_of_domain"]
    report = (tmp_path / "loso" / "sweep_report.md").read_text()
    assert "lora vs full: what each method gives up, per point" in report
    assert "| holdout_sources=tweeteval | TweetEval | out-of-domain score |" in report
