"""One run = (method, seed) -> a results folder on disk.

`context.prepare_context()` does the work shared by every run of an experiment once (data
build, tokenizer, tokenisation); `run_method()` trains and evaluates one method with
one seed and writes `OUTPUT_DIR/runs/<method>/seed-<seed>/`:
config.yaml, metrics.json, history.json, predictions.jsonl (and model/ when saved).
metrics.json is written last, so its presence marks a complete run.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch
from transformers import set_seed

from ...config import Config, config_to_yaml
from ...evaluation.metrics import validation_metrics
from ...evaluation.drift import measure_drift, probe_rows
from ...evaluation.predict import predict_split, prediction_rows, split_metrics
from ...evaluation.run_record import RunRecord, write_run_files
from ...layout import CHECKPOINTS, MODEL, RUN_FILES, seed_dir_name
from ...methods import get_method
from ...models.accounting import count_parameters
from ...models.attention import use_training_attention
from ...models.frozen_weights import frozen_weights_dtype, store_frozen_weights
from ...models.saving import save_trained
from ...tracking.lifecycle import tracked
from ...training.buckets import run_shapes
from ...training.progress import ProgressReporter, progress_logging
from ...training.trainer import (BestModelCallback, CheckpointInterval, FiniteLossCallback, StopOnSignal,
                                 budget_callbacks, build_trainer, build_training_args, pad_multiple)
from ...utils import signals
from ...utils.distributed import is_main
from ...utils.io import os_error_in
from ...utils.memory import MemoryMonitor, release_memory
from ...utils.signals import training_section
from ..study.study_plan import load_completed, run_dir_for
from .context import RunContext
from .run_files import history_of, last_checkpoint, run_health
from .trained_run import (TrainedRun, discard_trained, load_trained_run, load_weights, save_trained_run,
                          trained_dir)

log = logging.getLogger(__name__)


def remove_empty(folder: Path) -> None:
    # the Trainer creates its output_dir even with save_strategy="no"
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


@dataclass
class TrainOutcome:
    trainer: Any
    best: BestModelCallback
    params: dict
    train_output: Any
    wall_seconds: float
    memory: MemoryMonitor
    shapes: dict  # bucket_lengths, padding_fraction


def build_method_model(ctx: RunContext, method: str, seed: int, config: Config) -> tuple[Any, tuple, dict]:
    """The base checkpoint made trainable by `method`, seeded (new head, adapter init), with its parameter accounting;
    the same model whether it is trained now or gets the saved weights of an interrupted run."""
    set_seed(seed)  # the model (new head, LoRA init, dropout) is built after seeding
    base = ctx.provider.load_model()
    attention = use_training_attention(base, ctx.device)
    head = ctx.provider.head_module_names(base)
    model = get_method(method).make_trainable(base, config.method, head)
    params = count_parameters(model, head)
    params["training_attention"] = attention
    params["base_weights_dtype"] = frozen_weights_dtype(config.training.base_weights_dtype, method, ctx.precision)
    store_frozen_weights(model, params["base_weights_dtype"])
    return model, head, params


def method_callbacks(method: str, model: Any) -> list:
    """What a method needs from the training loop (AdaLoRA's rank reallocation); none for most."""
    make = get_method(method).training_callbacks
    return make(model) if make else []


def run_buckets(ctx: RunContext, config: Config, seed: int) -> tuple[list[int] | None, dict]:
    tok = ctx.tokenized
    return run_shapes(config.training.pad_buckets, tok.train.lengths, [*tok.validation.lengths, *tok.test.lengths],
                      config.training.batch_size, seed,
                      pad_multiple(ctx.precision in ("bf16", "fp16"), ctx.device == "cpu"))


def train_method(ctx: RunContext, method: str, seed: int, config: Config, run_dir: Path,
                 extra_callbacks: tuple = (), label: str | None = None, unkept: str | None = None) -> TrainOutcome:
    """Build, train and restore the best weights of `method`; shared by runs and search trials. Its checkpoints stay
    until the caller has kept the result (a run saves its trained weights first; see trained_run.py)."""
    release_memory()  # what an earlier run of this process freed goes back to the OS first: the baseline is the same
    baseline_rss = psutil.Process().memory_info().rss  # before the model: what the run itself costs is above this
    model, head, params = build_method_model(ctx, method, seed, config)
    args = build_training_args(config.training, config.learning_rate_for(method), seed, run_dir,
                               len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
    buckets, shapes = run_buckets(ctx, config, seed)
    label = label or f"{method} seed {seed}"
    best = BestModelCallback(config.training.patience, label=label)
    t = config.training
    interval = CheckpointInterval(t.checkpoint_minutes if t.save_checkpoints else None, label, unkept)
    trainer = build_trainer(config.training, model, ctx.tokenizer, args, ctx.tokenized.train, ctx.tokenized.validation,
                            [best, FiniteLossCallback(), StopOnSignal(), ProgressReporter(label), interval,
                             *budget_callbacks(config.training), *method_callbacks(method, model), *extra_callbacks],
                            head_modules=head,
                            compute_metrics=validation_metrics,
                            head_learning_rate=config.head_lr, pad_lengths=buckets)
    resume = last_checkpoint(run_dir) if config.training.save_checkpoints else None
    if resume:
        log.info("%s seed %d: resuming from %s", method, seed, resume)
        best.load(resume)
    with MemoryMonitor(baseline_bytes=baseline_rss) as memory, training_section(), progress_logging():
        start = time.perf_counter()
        try:
            train_output = trainer.train(resume_from_checkpoint=resume)
        except Exception as exc:
            disk = os_error_in(exc)  # a checkpoint write failed (a full disk): one line, not safetensors' own error
            if disk is None:
                raise
            last_checkpoint(run_dir)  # drops the checkpoint it cut off; an earlier complete one stays for the rerun
            raise disk from None
        wall = time.perf_counter() - start
        best.restore_best(trainer.model)
    return TrainOutcome(trainer, best, params, train_output, wall, memory, shapes)


def trained_record(out: TrainOutcome) -> TrainedRun:
    state = out.trainer.state
    return TrainedRun(
        params=out.params, epochs_run=float(state.epoch or 0.0), steps=state.global_step,
        warmup_steps=out.trainer.args.get_warmup_steps(state.max_steps), stopped_early=out.best.stopped_early,
        final_train_loss=out.train_output.training_loss, best_value=out.best.best_value, best_step=out.best.best_step,
        eval_seconds=out.best.eval_seconds, wall_seconds=out.wall_seconds, shapes=out.shapes,
        log_history=list(state.log_history), memory=out.memory.summary(), memory_series=out.memory.series)


def run_method(ctx: RunContext, method: str, seed: int, force: bool = False) -> RunRecord:
    """Train `method` with `seed`, evaluate on the test set, write the run folder; returns its record (what
    metrics.json holds; read back from there when the run was complete already)."""
    config = ctx.config.for_method(method)
    run_dir = run_dir_for(ctx.output_dir, method, seed)
    signals.checkpoint()
    signals.note(None)
    done = None if force else load_completed(run_dir)
    if done is not None:
        log.info("%s seed %d: already complete in %s, skipping", method, seed, run_dir)
        discard_trained(run_dir)  # left by a command stopped between writing metrics.json and removing it
        return RunRecord.from_json(done)
    if force:
        discard_trained(run_dir)
    log.info("%s seed %d: training on %d examples (%s, %s)", method, seed, len(ctx.tokenized.train.examples),
             ctx.device, ctx.precision)
    with tracked(lambda: ctx.hub.start_run(f"{method}-seed{seed}", config, {"method": method, "seed": seed}),
                 ctx.hub.end_run) as outcome:
        while True:
            try:
                record = _train_and_evaluate(ctx, config, method, seed, run_dir)
                break
            except torch.cuda.OutOfMemoryError:
                if not config.training.oom_retry or config.training.batch_size == 1:
                    raise
            # Freed here, after the handler: inside it the traceback still holds the failed run's frames, and
            # with them the model, optimizer states and activations, so gc could not collect them.
            release_memory()
            shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # their batch size no longer applies
            config = config.replace(batch_size=config.training.batch_size // 2,
                                    gradient_accumulation_steps=config.training.gradient_accumulation_steps * 2)
            log.warning("%s seed %d: CUDA out of memory; retrying with batch_size %d x accumulation %d "
                        "(same effective batch)", method, seed, config.training.batch_size,
                        config.training.gradient_accumulation_steps)
        outcome.metrics = {k: getattr(record, k) for k in ("test", "params", "timing", "memory", "drift")
                           if getattr(record, k) is not None}
        outcome.artifacts = [run_dir / n for n in RUN_FILES]
    signals.note(None)  # complete: nothing of it is left to redo
    return record


def _train_or_load(ctx: RunContext, config: Config, method: str, seed: int, run_dir: Path):
    """The trained model of this run, its trainer for the test pass, its TrainedRun and the memory monitor to sample
    the test pass with: trained now (its weights saved before returning), or loaded from an interrupted command."""
    loaded = load_trained_run(run_dir)
    if loaded is not None:
        trained, weights = loaded
        model, head, _ = build_method_model(ctx, method, seed, config)
        load_weights(model, weights)
        log.info("%s seed %d: trained before an interrupt (%d steps; %s); testing it without retraining", method,
                 seed, trained.steps, trained_dir(run_dir))
        args = build_training_args(config.training, config.learning_rate_for(method), seed, run_dir,  # predicts only
                                   len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
        trainer = build_trainer(config.training, model, ctx.tokenizer, args, None, ctx.tokenized.validation, [],
                                head_modules=head, compute_metrics=validation_metrics,
                                pad_lengths=run_buckets(ctx, config, seed)[0])
        signals.note(f"{method} seed {seed}'s trained weights are kept in {trained_dir(run_dir)}: the rerun tests "
                     "it without retraining")
        return trainer, trained, MemoryMonitor()
    out = train_method(ctx, method, seed, config, run_dir, extra_callbacks=(ctx.hub.callback(),))
    trained = trained_record(out)
    if is_main():
        with training_section():  # a signal here waits for the save: then it stops with the weights on disk
            save_trained_run(run_dir, out.trainer.model, trained)
            signals.note(f"{method} seed {seed} had finished training, and its weights are kept in "
                         f"{trained_dir(run_dir)}: the rerun tests it without retraining")
    shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # the trained weights are kept: no resume needed
    return out.trainer, trained, out.memory


def run_drift(ctx: RunContext, config: Config, model) -> dict:
    """The trained model's drift from the base model on the comparison's probe texts (test texts, the same for every
    run), in the precision of the run's test pass."""
    e = config.experiment
    examples = ctx.tokenized.test.examples
    texts = [examples[i].text for i in probe_rows(len(examples), e.drift_probe_texts)]
    # seconds on a small model, about half a minute for RoBERTa-base on a CPU (the base's pass the first time)
    log.info("drift from the base model: CKA on %d probe texts, intruder dimensions of the changed matrices "
             "(drift: false turns it off)", len(texts))
    key = (config.model.model_name, hash(tuple(texts)), ctx.tokenized.max_length, ctx.precision)  # shared by the pairs
    return measure_drift(model, ctx.provider.load_model, ctx.tokenizer, texts, ctx.tokenized.max_length,
                         e.intruder_top_k, e.intruder_epsilon, key, ctx.precision)


def _train_and_evaluate(ctx: RunContext, config: Config, method: str, seed: int, run_dir: Path) -> RunRecord:
    """Train (or take an interrupted run's trained weights), test, write the run folder; `config` may differ from
    ctx.config (OOM retry, overrides)."""
    trainer, trained, memory = _train_or_load(ctx, config, method, seed, run_dir)
    with memory:  # training's monitor keeps sampling through the test pass
        probs, predict_seconds = predict_split(trainer, ctx.tokenized.test)
    drift = run_drift(ctx, config, trainer.model) if config.experiment.drift else None

    epochs_run = trained.epochs_run
    wall = trained.wall_seconds
    train_only = max(wall - trained.eval_seconds, 1e-9)  # exclude validation passes from throughput
    n_train, n_test = len(ctx.tokenized.train.examples), len(ctx.tokenized.test.examples)
    record = RunRecord(
        method=method, seed=seed, model_name=config.model.model_name, head=ctx.provider.describe().get("head"),
        labels=list(ctx.data.labels), test=split_metrics(ctx.tokenized.test, probs, ctx.data.labels, ctx.data.holdout),
        validation={"best_macro_f1": trained.best_value, "best_step": trained.best_step},
        params=trained.params,
        training={
            "epochs_run": epochs_run, "steps": trained.steps, "stopped_early": trained.stopped_early,
            "final_train_loss": trained.final_train_loss, "learning_rate": config.learning_rate_for(method),
            "head_learning_rate": config.head_lr,
            "max_epochs": config.training.num_epochs, "patience": config.training.patience,
            # the declared budget (equal for every method) or each method's own epochs
            "budget": {"unit": config.training.budget_unit,
                       "value": (config.training.num_epochs if config.training.budget_unit == "epochs"
                                 else config.training.budget)},
            **trained.shapes,
        },
        timing={
            "train_seconds": round(wall, 3),
            "train_seconds_excluding_eval": round(train_only, 3),
            "seconds_per_epoch": round(train_only / epochs_run, 3) if epochs_run else None,
            "train_samples_per_second": round(epochs_run * n_train / train_only, 3),
            "train_tokens_per_second": round(epochs_run * ctx.tokenized.train.num_tokens / train_only, 1),
            "eval_seconds": round(predict_seconds, 3),
            "eval_samples_per_second": round(n_test / predict_seconds, 3),
            "eval_tokens_per_second": round(ctx.tokenized.test.num_tokens / predict_seconds, 1),
            # tested by a rerun after an interrupt: memory then covers training (and its process) only
            **({"tested_after_interrupt": True} if trained.resumed else {}),
        },
        memory=trained.memory if trained.resumed else memory.summary(),
        data={"train": n_train, "validation": len(ctx.tokenized.validation.examples), "test": n_test,
              "max_length": ctx.tokenized.max_length, "fingerprint": ctx.data.fingerprint},
        environment=ctx.environment, drift=drift,
    )
    history = history_of(trained.log_history)
    history["memory_mb"] = trained.memory_series if trained.resumed else memory.series
    record.health = run_health(record.test, history, trained.steps, trained.warmup_steps)
    for problem in record.health["problems"]:
        log.warning("%s seed %d: %s", method, seed, problem)
    if not is_main():  # every rank trained and evaluated; rank 0 writes
        release_memory()
        return record
    if config.experiment.save_model:
        save_dir = config.experiment.save_dir
        target = Path(save_dir) / method / seed_dir_name(seed) if save_dir else run_dir / MODEL
        record.saved_model = save_trained(trainer.model, ctx.tokenizer, target, method, config.model,
                                          ctx.tokenized.max_length, ctx.data.labels,
                                          merged=config.experiment.save_merged)
    write_run_files(run_dir, config_to_yaml(config), record, history,
                    prediction_rows(ctx.tokenized.test, probs, ctx.data.labels))
    discard_trained(run_dir)  # metrics.json marks the run complete: its trained weights are no longer needed
    log.info("%s seed %d: test macro-F1 %.4f, accuracy %.4f (%.0f s)", method, seed,
             record.test["macro_f1"], record.test["accuracy"], wall)
    del trainer
    release_memory()
    return record
