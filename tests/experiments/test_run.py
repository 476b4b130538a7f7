"""End-to-end runs with tiny random models (seconds each, one thread)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from finetune_compare.errors import DataError, ModelError
from finetune_compare.experiments.commands.compare import ComparisonExperiment
from finetune_compare.experiments.execution.context import prepare_context
from finetune_compare.experiments.execution.run import run_method
from finetune_compare.experiments.study.study_plan import run_dir_for
from finetune_compare.evaluation.predict import predict_texts
from finetune_compare.models.saving import load_trained
from finetune_compare.utils.io import read_json, read_jsonl

pytestmark = pytest.mark.slow


def _first_last_loss(history):
    losses = [e["loss"] for e in history["train"]]
    k = max(2, len(losses) // 4)
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_train_writes_complete_run(tiny_bert, make_config, method):
    cfg = make_config(tiny_bert, num_epochs=6)
    ctx = prepare_context(cfg)
    metrics = run_method(ctx, method, cfg.seed)
    run_dir = run_dir_for(ctx.output_dir, method, cfg.seed)
    on_disk = read_json(run_dir / "metrics.json")
    assert on_disk["method"] == method and on_disk["seed"] == cfg.seed
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "per_class", "per_source",
                "confusion_matrix"):
        assert key in on_disk["test"]
    assert set(on_disk["test"]["per_source"]) == {"imdb", "sst5", "tweeteval"}
    assert set(on_disk["params"]) >= {"total", "trainable", "adapter", "head"}
    assert set(on_disk["timing"]) >= {"train_seconds", "train_samples_per_second", "eval_samples_per_second"}
    memory = on_disk["memory"]
    assert set(memory) == {"peak_rss_mb", "peak_cuda_mb", "baseline_rss_mb", "peak_rss_above_baseline_mb"}
    assert 0 < memory["peak_rss_above_baseline_mb"] < memory["peak_rss_mb"]
    assert on_disk["params"]["base_weights_dtype"] == "fp32"  # tiny_config trains in fp32
    assert on_disk["params"]["training_attention"] == "eager"  # CPU training: eager under dropout (models.attention)
    if method == "lora":
        assert 0 < on_disk["params"]["adapter"] < on_disk["params"]["trainable"] < on_disk["params"]["total"]
    else:
        assert on_disk["params"]["trainable"] == on_disk["params"]["total"]
    history = read_json(run_dir / "history.json")
    first, last = _first_last_loss(history)
    assert last < first, f"loss did not go down: {first:.4f} -> {last:.4f}"
    assert history["eval"] and "macro_f1" in history["eval"][0] and history["memory_mb"]
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert len(preds) == metrics.data["test"] == 60
    assert set(preds[0]) == {"id", "source", "label", "predicted", "probabilities", "text"}
    assert sum(preds[0]["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model_name"] == tiny_bert
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_save_reload_gives_identical_predictions(tiny_roberta, make_config, method, monkeypatch):
    cfg = make_config(tiny_roberta, save_model=True, save_merged=method == "lora", num_epochs=1)
    ctx = prepare_context(cfg)
    metrics = run_method(ctx, method, cfg.seed)
    run_dir = run_dir_for(ctx.output_dir, method, cfg.seed)
    before = read_jsonl(run_dir / "predictions.jsonl")
    texts = [r["text"] for r in before]
    expected = np.array([[r["probabilities"][c] for c in ("negative", "neutral", "positive")] for r in before])
    model, tokenizer, meta = load_trained(run_dir / "model")
    assert meta["method"] == method and model.config.id2label[1] == "neutral"
    np.testing.assert_allclose(predict_texts(model, tokenizer, texts, meta["max_length"]), expected, atol=1e-4)
    saved = metrics.saved_model["bytes"]
    if method == "lora":
        files = {p.name for p in (run_dir / "model").iterdir()}
        assert "adapter_model.safetensors" in files and "model.safetensors" not in files
        merged, mtok, _ = load_trained(run_dir / "model" / "merged")
        np.testing.assert_allclose(predict_texts(merged, mtok, texts, meta["max_length"]), expected,
                                   atol=1e-4)
        assert saved < metrics.saved_model["merged_bytes"]
        # plain peft, no finetune-compare code: the base path is relative to the save folder (never a venv path)
        # and the labels are in finetune_compare.json
        import json
        import os

        from peft import AutoPeftModelForSequenceClassification

        model_dir = run_dir / "model"
        adapter = json.loads((model_dir / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == os.path.relpath(tiny_roberta, model_dir.resolve())
        labels = json.loads((model_dir / "finetune_compare.json").read_text())
        monkeypatch.chdir(model_dir)
        plain = AutoPeftModelForSequenceClassification.from_pretrained(
            ".", num_labels=labels["num_labels"], id2label={int(k): v for k, v in labels["id2label"].items()},
            label2id=labels["label2id"])
        assert plain.config.id2label[2] == "positive"
        np.testing.assert_allclose(predict_texts(plain.eval(), tokenizer, texts, meta["max_length"]), expected,
                                   atol=1e-4)


def test_early_stopping_triggers(tiny_bert, make_config):
    # a learning rate too small to move the metric: no gain after the first evaluation
    cfg = make_config(tiny_bert, learning_rate=1e-12, patience=1, num_epochs=5, evaluations_per_epoch=2)
    metrics = run_method(prepare_context(cfg), "full", cfg.seed)
    assert metrics.training["stopped_early"]
    assert metrics.training["epochs_run"] < 2
    assert metrics.validation["best_step"] == metrics.training["steps"] // 2


def test_same_seed_same_metrics_other_seed_differs(tiny_bert, make_config, tmp_path):
    runs = []
    for out, seed in (("a", 7), ("b", 7), ("c", 8)):
        cfg = make_config(tiny_bert, output_dir=str(tmp_path / out), seed=7)
        runs.append(run_method(prepare_context(cfg), "lora", seed))
    a, b, c = runs
    assert a.test == b.test
    assert a.validation == b.validation
    preds_a = read_jsonl(tmp_path / "a" / "runs" / "lora" / "seed-7" / "predictions.jsonl")
    preds_b = read_jsonl(tmp_path / "b" / "runs" / "lora" / "seed-7" / "predictions.jsonl")
    assert preds_a == preds_b
    hist_a, hist_b = (read_json(tmp_path / d / "runs" / "lora" / "seed-7" / "history.json") for d in ("a", "b"))
    hist_a.pop("memory_mb"), hist_b.pop("memory_mb")  # RSS over time is a measurement, not a result
    assert hist_a == hist_b
    assert c.test["confusion_matrix"] != a.test["confusion_matrix"] or c.validation != a.validation


def test_compare_runs_both_methods_and_zero_shot_row(tiny_roberta_sentiment, make_config):
    cfg = make_config(tiny_roberta_sentiment, num_epochs=1)
    result = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    assert result["methods"] == ["full", "lora"]
    assert result["base"]["params"]["trainable"] == 0 and "macro_f1" in result["base"]["test"]
    on_disk = json.loads((Path(cfg.output_dir) / "comparison.json").read_text())
    assert on_disk["n_runs"] == {"full": 1, "lora": 1}
    assert on_disk["per_method"] == json.loads(json.dumps(result["per_method"]))  # API returns what the CLI writes
    # rerunning skips completed runs (same metrics object read back from disk)
    again = ComparisonExperiment(cfg).run_multiple_runs(cfg)
    assert [r["timing"] for r in again["runs"]] == [r["timing"] for r in result["runs"]]


def test_dataset_smaller_than_batch_is_refused(tiny_bert, make_config):
    cfg = make_config(tiny_bert, samples_per_class=40, val_fraction=0.25, batch_size=128)
    with pytest.raises(DataError, match=r"only \d+ training examples for batch_size 128: raise samples_per_class"):
        prepare_context(cfg)


def test_bad_target_modules_fail_before_training(tiny_bert, make_config):
    cfg = make_config(tiny_bert, lora_target_modules=["q_proj"])
    with pytest.raises(ModelError, match="'q_proj' matches no layer"):
        prepare_context(cfg)  # checked on the real model before the folder is claimed
    assert not (Path(cfg.output_dir) / "experiment.yaml").exists()


def test_lora_stores_its_frozen_base_in_bf16_and_exports_fp32(tiny_roberta, make_config, monkeypatch):
    """Under bf16 compute: frozen base bf16, adapters and head fp32; the merged export back in fp32."""
    import torch

    from finetune_compare.experiments.execution import run as run_module
    from finetune_compare.training.device import resolve_precision

    if resolve_precision("auto", "cpu") != "bf16":
        pytest.skip("this CPU has no native bf16")
    cfg = make_config(tiny_roberta, mixed_precision="bf16", save_model=True, save_merged=True, num_epochs=1)
    seen = {}
    original = run_module.build_trainer
    monkeypatch.setattr(run_module, "build_trainer", lambda config, model, *a, **k: seen.setdefault("model", model)
                        and original(config, model, *a, **k))
    metrics = run_method(prepare_context(cfg), "lora", cfg.seed)
    assert metrics.params["base_weights_dtype"] == "bf16"
    dtypes = {(p.requires_grad, p.dtype) for p in seen["model"].parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}
    assert seen["model"].config._attn_implementation == "sdpa_eager_cpu_dropout"
    merged, _, _ = load_trained(run_dir_for(Path(cfg.output_dir), "lora", cfg.seed) / "model" / "merged")
    assert {p.dtype for p in merged.parameters()} == {torch.float32}
    full = run_method(prepare_context(cfg.replace(output_dir=cfg.output_dir + "-full")), "full", cfg.seed)
    assert full.params["base_weights_dtype"] == "fp32"  # full fine-tuning keeps fp32 master weights


def test_the_terminal_table_shows_a_dash_for_a_method_with_every_run_excluded():
    """A method whose only run collapsed (excluded from the statistics) has no mean: a dash, not a traceback."""
    from finetune_compare.experiments.commands.compare import TABLE_METRICS, format_table

    stats = {"full": {k: {"mean": 0.5, "std": None} for k in TABLE_METRICS},
             "lora": {k: {"mean": None, "std": None} for k in TABLE_METRICS}}
    eff = {"trainable_params": 10, "train_seconds": {"mean": 1.0}, "peak_rss_mb": 100.0}
    table = format_table({"methods": ["full", "lora"], "per_method": stats, "metric_groups": {"per_source": []},
                          "efficiency": {"full": eff, "lora": eff}, "n_runs": {"full": 1, "lora": 0}})
    row = next(line for line in table.splitlines() if line.startswith("macro_f1"))
    assert row.split()[1:] == ["0.5000", "-"]
