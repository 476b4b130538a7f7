"""IA3 and VeRA, added through the method registry only: compared, saved, reloaded, same predictions."""

import json

import numpy as np
import pytest

from finetune_compare.experiments.commands.compare import ComparisonExperiment
from finetune_compare.evaluation.predict import predict_texts
from finetune_compare.models.saving import load_trained


@pytest.fixture(scope="module")
def compared(tiny_bert, tmp_path_factory):
    from ..conftest import tiny_config

    tmp = tmp_path_factory.mktemp("methods")
    config = tiny_config(tiny_bert, tmp, methods=["full", "ia3", "vera"], vera_r=16, num_epochs=1, save_model=True)
    return config, ComparisonExperiment(config).run_multiple_runs()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ia3", "vera"])
def test_new_method_runs_in_a_comparison_and_reloads(compared, method):
    config, result = compared
    run = next(r for r in result["runs"] if r["method"] == method)
    assert run["training"]["learning_rate"] == config.learning_rate_for(method) != config.learning_rate
    assert run["params"]["adapter"] > 0 and run["params"]["trainable"] == run["params"]["adapter"] + run["params"]["head"]
    assert f"{method}_vs_full" in result["comparisons"]
    run_dir = f"{config.output_dir}/runs/{method}/seed-{config.seed}"
    rows = [json.loads(line) for line in open(f"{run_dir}/predictions.jsonl")]
    model, tokenizer, meta = load_trained(f"{run_dir}/model")
    assert meta["method"] == method and meta["peft"] is True
    probs = predict_texts(model, tokenizer, [r["text"] for r in rows], meta["max_length"])
    # the reloaded adapter reproduces the run's own test predictions
    assert (probs.argmax(-1) == np.array([r["predicted"] for r in rows])).mean() >= 0.95
