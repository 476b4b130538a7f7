"""Gradient accumulation must average, not sum: batch 16 and batch 8 x 2 are the same optimizer step.

transformers 5 passes `num_items_in_batch` to models whose forward takes **kwargs and then skips
its own division by the accumulation steps; sequence classifiers ignore that argument and return
a per-micro-batch mean, so without our loss function the accumulated loss (and gradient) doubled.
"""

import dataclasses

import pytest

from finetune_compare.experiments.execution.context import prepare_context
from finetune_compare.methods import get_method
from finetune_compare.training.trainer import build_trainer, build_training_args

from ..conftest import make_tiny_bert

pytestmark = pytest.mark.slow


def _first_step(ctx, method: str, batch_size: int, accumulation: int) -> dict:
    from transformers import set_seed

    config = ctx.config.replace(batch_size=batch_size, gradient_accumulation_steps=accumulation,
                                batch_grouping="random")  # RandomSampler: the same first 16 examples either way
    set_seed(config.seed)
    base = ctx.provider.load_model()
    model = get_method(method).make_trainable(base, config.method, ctx.provider.head_module_names(base))
    args = build_training_args(config.training, config.learning_rate_for(method), config.seed, ctx.output_dir / "ga",
                               64, ctx.precision, ctx.device)
    args = dataclasses.replace(args, max_steps=1, logging_steps=1, eval_strategy="no", max_grad_norm=1e9)
    trainer = build_trainer(config.training, model, ctx.tokenizer, args, ctx.tokenized.train, None, [],
                            head_learning_rate=config.head_lr)
    trainer.train()
    return next(e for e in trainer.state.log_history if "loss" in e)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_accumulated_step_equals_large_batch(tmp_path, make_config, method):
    model = make_tiny_bert(tmp_path / "no-dropout", dropout=0.0)  # dropout masks differ by batch shape
    ctx = prepare_context(make_config(str(model), lora_dropout=0.0))
    big = _first_step(ctx, method, 16, 1)
    accumulated = _first_step(ctx, method, 8, 2)
    assert 0.5 < big["loss"] < 2.5  # about ln 3 for a fresh 3-way head
    assert accumulated["loss"] == pytest.approx(big["loss"], rel=1e-3)
    assert accumulated["grad_norm"] == pytest.approx(big["grad_norm"], rel=1e-3)
