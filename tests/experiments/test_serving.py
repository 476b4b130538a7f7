"""Serving cost (`serving: true`): each method's median run exported and timed; the ratio in the verdict's cost line,
the efficiency table and the report's sentences, all read from serving.json."""

from __future__ import annotations

import json
import time

import pytest

from finetune_compare.analysis.serving_cost import serving_clause, serving_rows, serving_sentences
from finetune_compare.errors import ConfigError
from finetune_compare.evaluation.serving import serving_texts, time_forms


def test_serving_needs_save_model(make_config):
    with pytest.raises(ConfigError, match="'serving': exports each method's saved model; needs save_model: true"):
        make_config("embedded-minilm", serving=True)


def test_forms_are_timed_in_the_same_rounds():
    calls = []

    def form(name, ms):
        def forward(batch):
            calls.append(name)
            time.sleep(ms / 1000 * len(batch))
        return forward, (lambda texts: list(texts))

    texts = [f"t{i}" for i in range(4)]
    timed = time_forms({"fast": form("fast", 1), "slow": form("slow", 3)}, texts, rounds=3, warmup=1)
    assert set(timed) == {"fast", "slow"} and set(timed["fast"]) == {"batch_1", "batch_4"}
    assert timed["fast"]["batch_4"]["calls"] == 3 and timed["fast"]["batch_1"]["calls"] == 24
    assert timed["slow"]["batch_4"]["p50_ms"] > 2 * timed["fast"]["batch_4"]["p50_ms"]
    # interleaved: the forms alternate (rotating which goes first), never all of one form then the other
    firsts = [calls[i * 18] for i in range(4)]  # 9 calls a form a round (8 single texts + 1 batch)
    assert firsts == ["fast", "slow", "fast", "slow"]


def test_serving_texts_are_fixed_by_id():
    rows = [{"id": f"x{i:03d}", "text": f"text {i}"} for i in range(50, 0, -1)]
    assert serving_texts(rows) == [f"text {i}" for i in range(1, 33)]


def _eff(ms_model, ms_adapter=None, merged=True, size=100):
    latency = {"model": {"batch_1": {"p50_ms": ms_model / 10, "p95_ms": ms_model / 8, "calls": 80},
                         "batch_32": {"p50_ms": ms_model, "p95_ms": ms_model * 1.1, "calls": 10}}}
    if ms_adapter:
        latency["adapter"] = {"batch_1": {"p50_ms": ms_adapter / 10, "p95_ms": ms_adapter / 8, "calls": 80},
                              "batch_32": {"p50_ms": ms_adapter, "p95_ms": ms_adapter * 1.1, "calls": 10}}
    return {"serving": {"seed": 42, "merged": merged, "latency": latency,
                        "bytes": {"model": size * 2**20, **({"adapter": 2**20} if ms_adapter else {})}}}


def test_the_cost_clause_and_sentences_say_what_was_measured():
    eff = {"lora": _eff(102.0, 150.0), "full": _eff(100.0, merged=False)}
    clause = serving_clause("lora", "full", eff)
    assert "merged lora 1.02x full's" in clause and "unmerged adapter 1.47x its merged model" in clause
    assert "deployable size 1.00x" in clause
    cmp = {"methods": ["full", "lora"], "reference": "full", "efficiency": eff,
           "serving": {"texts": 32, "rounds": 10, "warmup_rounds": 2, "threads": 1, "device": "cpu",
                       "processor": "AMD EPYC"}}
    text = " ".join(serving_sentences(cmp))
    assert "lora, merged, serves batch 32 at the same speed as full (p50 1.02x)" in text
    assert "its adapter takes 1.47x the merged model's time" in text
    rows = serving_rows(cmp)
    assert ["serving batch 32, unmerged adapter: p50 / p95 (ms)", "–", "150.0 / 165.0"] in rows
    slower = {"lora": _eff(130.0, 131.0), "full": _eff(100.0, merged=False)}
    text = " ".join(serving_sentences({**cmp, "efficiency": slower}))
    assert "1.30x as long as full" in text and "its adapter serves at the merged model's speed" in text


def test_no_serving_figures_no_clause():
    assert serving_clause("lora", "full", {"lora": {"serving": None}, "full": {"serving": None}}) == ""
    assert serving_rows({"methods": ["full"], "efficiency": {"full": {"serving": None}}}) == []


@pytest.mark.slow
def test_a_compare_with_serving_prints_the_ratio_in_its_cost_line(tiny_roberta, tmp_path, capsys):
    from finetune_compare.cli import main

    out = tmp_path / "out"
    args = ["compare", "--set", f"model_name={tiny_roberta}", "--set", "data_source=embedded",
            "--set", "samples_per_class=40", "--set", "val_fraction=0.2", "--set", "test_samples_per_class=12", "--set", "max_length=48",
            "--set", "num_epochs=1", "--set", "batch_size=8", "--set", "num_runs=1", "--set", "patience=0",
            "--set", "mixed_precision=no", "--set", "tracking_mlflow=false", "--set", "tracking_wandb=false",
            "--set", "drift=false", "--set", "save_model=true", "--set", "serving=true",
            "--set", "methods=[full, lora]", "--output-dir", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "serving (batch 32, p50 forward pass, CPU): merged lora" in printed
    serving = json.loads((out / "serving.json").read_text())
    assert set(serving["methods"]) == {"full", "lora"}
    assert set(serving["methods"]["lora"]["latency"]) == {"model", "adapter", "onnx"}
    assert set(serving["methods"]["full"]["latency"]) == {"model", "onnx"}
    assert all(c["passed"] for m in serving["methods"].values() for c in m["check"]["runtimes"].values())
    assert not list(out.glob(".serving-*"))  # the temporary exports are gone
    report = (out / "report.md").read_text()
    assert "serving batch 1, ONNX Runtime: p50 / p95 (ms)" in report and "Serving was measured on" in report
    # a rerun of the finished comparison does not time again
    before = (out / "serving.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "serving.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_method_whose_export_fails_is_said_and_the_report_still_written(tiny_roberta, tmp_path, monkeypatch):
    from finetune_compare.experiments.commands import export as export_command
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    from ..conftest import tiny_config

    monkeypatch.setitem(export_command.TOLERANCE, "fp32", {"transformers": 0.0, "onnx": 0.0})
    config = tiny_config(tiny_roberta, tmp_path, methods=["full", "lora"], num_epochs=1, save_model=True,
                         serving=True, drift=False, evaluate_base_model=False)
    ComparisonExperiment(config).run_multiple_runs()
    out = tmp_path / "out"
    serving = json.loads((out / "serving.json").read_text())
    assert serving["methods"] == {} and set(serving["not_measured"]) == {"full", "lora"}
    report = (out / "report.md").read_text()
    assert "lora's serving was not measured: the export does not reproduce the run's predictions" in report


def test_nothing_measured_says_only_why():
    cmp = {"methods": ["full", "lora"], "reference": "full", "efficiency": {"full": {}, "lora": {}},
           "serving": {"texts": 32, "rounds": 10, "warmup_rounds": 2, "threads": 1, "device": "cpu",
                       "not_measured": {"lora": "no saved model"}}}
    assert serving_sentences(cmp) == ["lora's serving was not measured: no saved model."]
