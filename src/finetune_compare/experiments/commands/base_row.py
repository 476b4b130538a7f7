"""The base-model row: the untrained checkpoint on the test set, when its head already predicts our classes (the
reference checkpoint is a TweetEval sentiment model), so a comparison shows what fine-tuning added or lost."""

from __future__ import annotations

import logging

from ...config import config_to_yaml
from ...evaluation.metrics import validation_metrics
from ...evaluation.predict import predict_split, prediction_rows, split_metrics
from ...evaluation.run_record import RunRecord, write_run_files
from ...layout import BASE_METHOD, CHECKPOINTS, Layout
from ...models.accounting import count_parameters
from ...training.trainer import build_trainer, build_training_args
from ...utils.distributed import is_main
from ...utils.memory import MemoryMonitor, release_memory
from ..execution.context import RunContext
from ..execution.run import remove_empty
from ..study.study_plan import load_completed

log = logging.getLogger(__name__)


def evaluate_base_model(ctx: RunContext, force: bool = False) -> dict | None:
    """The untrained checkpoint on the test set, when its head already predicts our classes."""
    if not ctx.provider.head_fits:
        log.info("no zero-shot row: %s", getattr(ctx.provider, "head_note", lambda: "head does not fit")())
        return None
    run_dir = Layout(ctx.output_dir).base_run
    done = None if force else load_completed(run_dir)
    if done is not None:
        return done
    config = ctx.config
    model = ctx.provider.load_model()
    head = ctx.provider.head_module_names(model)
    args = build_training_args(config.training, config.method.learning_rate, config.experiment.seed,  # predicts only
                               run_dir,
                               len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
    trainer = build_trainer(config.training, model, ctx.tokenizer, args, None, ctx.tokenized.validation, [],
                            compute_metrics=validation_metrics)
    with MemoryMonitor() as memory:
        probs, seconds = predict_split(trainer, ctx.tokenized.test)
    n_test = len(ctx.tokenized.test.examples)
    record = RunRecord(
        method=BASE_METHOD, seed=None, model_name=config.model.model_name, head=ctx.provider.describe().get("head"),
        labels=list(ctx.data.labels), test=split_metrics(ctx.tokenized.test, probs, ctx.data.labels, ctx.data.holdout),
        params={**count_parameters(model, head), "trainable": 0, "trainable_ratio": 0.0},
        timing={"eval_seconds": round(seconds, 3), "eval_samples_per_second": round(n_test / seconds, 3),
                "eval_tokens_per_second": round(ctx.tokenized.test.num_tokens / seconds, 1)},
        memory=memory.summary(), environment=ctx.environment,
    )
    if is_main():
        write_run_files(run_dir, config_to_yaml(config), record, {"train": [], "eval": []},
                        prediction_rows(ctx.tokenized.test, probs, ctx.data.labels))
    remove_empty(run_dir / CHECKPOINTS)
    del trainer, model
    release_memory()
    return record.to_json()
