"""One run = (method, seed) -> a results folder on disk.

`prepare_context()` does the work shared by every run of an experiment once (data
build, tokenizer, tokenisation); `run_method()` trains and evaluates one method with
one seed and writes `OUTPUT_DIR/runs/<method>/seed-<seed>/`:
config.yaml, metrics.json, history.json, predictions.jsonl (and model/ when saved).
metrics.json is written last, so its presence marks a complete run.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import torch
from transformers import set_seed

from ..config import Config, config_to_yaml
from ..data.build import DataBundle, DataPools, build_data, load_pools
from ..data.tokenization import TokenizedData, tokenize_bundle
from ..errors import DataError
from ..evaluation.run_record import RunRecord, write_run_files
from ..evaluation.metrics import validation_metrics
from ..evaluation.predict import predict_split, prediction_rows, split_metrics
from ..layout import (
    BASE_METHOD,
    CHECKPOINTS,
    METRICS,
    MODEL,
    RUN_FILES,
    Layout,
    seed_dir_name,
)
from ..models.accounting import count_parameters
from ..models.attention import use_training_attention
from ..models.base import BaseModel
from ..models.hf import build_model_provider, effective_max_length
from ..methods import get_method
from ..methods.targets import check_method
from ..models.frozen_weights import frozen_weights_dtype, store_frozen_weights
from ..models.saving import save_trained
from ..tracking import TrackerHub, build_tracker_hub
from ..training.progress import ProgressReporter, progress_logging
from ..training.buckets import run_shapes
from ..training.trainer import (BestModelCallback, FiniteLossCallback, StopOnSignal, budget_callbacks, build_trainer,
                                build_training_args, pad_multiple)
from ..utils import signals
from ..training.device import resolve_device, resolve_precision
from ..utils.distributed import is_main
from ..utils.io import creation_problem, read_json
from ..utils.memory import MemoryMonitor, release_memory
from ..utils.signals import training_section
from .outputs import check_output_dir, claim_output_dir
from .run_records import history_of, last_checkpoint, run_health
from ..tracking.lifecycle import tracked

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    config: Config
    provider: BaseModel
    tokenizer: Any
    data: DataBundle
    tokenized: TokenizedData
    device: str
    precision: str
    output_dir: Path
    environment: dict = field(default_factory=dict)
    hub: Any = None  # TrackerHub: MLflow / W&B observers
    pools: DataPools | None = None  # cleaned pools, for drawing another training sample per pair


def context_for_pair(ctx: RunContext, k: int) -> RunContext:
    """Pair k's data: with resample_data_per_run, its own training sample and validation split (seed + k),
    shared by every method of the pair; the test set is the same for all pairs. Pair 0 uses the base draw."""
    if not ctx.config.resample_data_per_run or k == 0 or ctx.pools is None:
        return ctx
    data = build_data(ctx.config.data, ctx.config.seed, data_seed=ctx.config.seed + k, pools=ctx.pools)
    check_data_fits(ctx.config, data)
    tokenized = tokenize_bundle(data, ctx.tokenizer, ctx.tokenized.max_length,
                                cache_dir=Layout(ctx.output_dir).cache if is_main() else None)
    return dataclasses.replace(ctx, data=data, tokenized=tokenized)


def environment_info(device: str, precision: str) -> dict:
    import peft
    import transformers

    info = {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__, "device": device,
        "precision": precision, "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def check_data_fits(config: Config, data: DataBundle, methods: list[str] | None = None) -> None:
    """Every method's batch (its method_overrides included) fits the training data."""
    n_train = len(data.train)
    for method in [None, *(methods or config.methods)]:
        size = (config.for_method(method) if method else config).batch_size
        if n_train < size:
            where = f"method_overrides.{method}.batch_size" if method and size != config.batch_size else "batch_size"
            raise DataError(f"only {n_train} training examples for {where} {size}: raise samples_per_class or "
                            f"lower {where}")


def check_methods(config: Config, provider: BaseModel, methods: list[str], precision: str) -> None:
    """Every method this command will run, with its overrides, checked before claiming. The real model is
    loaded only when a method chooses layers by name (target modules, rank against layer width)."""
    for method in methods:
        get_method(method)
        frozen_weights_dtype(config.for_method(method).base_weights_dtype, method, precision)
    adapters = [m for m in methods if get_method(m).adapts_layers]
    if not adapters:
        return
    model = provider.load_model()
    head = provider.head_module_names(model)
    for method in adapters:
        check_method(model, config.for_method(method).method, head, method)
    del model


def check_save_dir(config: Config) -> None:
    if not (config.save_model and config.save_dir):
        return
    problem = creation_problem(config.save_dir)
    if problem:
        raise DataError(f"config key 'save_dir': {problem}, so models cannot be saved there")


def prepare_context(config: Config, provider: BaseModel | None = None, output_dir: str | Path | None = None,
                    overwrite: bool = False, methods: list[str] | None = None,
                    pools: DataPools | None = None) -> RunContext:
    """Validate everything that needs no training, then claim the output folder, then tokenise.

    Nothing is written (and nothing is deleted by --overwrite) before the config, the model and
    the data have been checked, so a failing command never blocks or damages the folder.
    """
    out = Path(output_dir or config.output_dir)
    check_output_dir(config, out, overwrite and is_main())  # never mix results of two configurations
    return build_context(config, out, provider, methods, pools, claim=lambda: claim_output_dir(config, out, overwrite))


def build_context(config: Config, out: Path, provider: BaseModel | None = None, methods: list[str] | None = None,
                  pools: DataPools | None = None, claim=None) -> RunContext:
    """The checked model and data of `config`; `claim()` is called once they are checked and before anything is
    written. Without `claim` (a cost plan) nothing is written: no token cache, no trackers."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    if device == "cuda" and config.gpu_memory_fraction:
        torch.cuda.set_per_process_memory_fraction(config.gpu_memory_fraction)
    precision = resolve_precision(config.mixed_precision, device)
    provider = provider or build_model_provider(config.model)  # fails fast on a bad model name
    signals.checkpoint()
    check_methods(config, provider, list(methods or config.methods), precision)
    check_save_dir(config)
    tokenizer = provider.load_tokenizer()
    max_length = effective_max_length(config.model, provider, tokenizer)
    pools = pools or load_pools(config.data)
    data = build_data(config.data, config.seed, pools=pools)
    check_data_fits(config, data, list(methods or config.methods))
    provider.use_labels(data.labels)  # the head predicts the data's classes
    signals.checkpoint()
    writes = claim is not None and is_main()
    if writes:
        claim()  # everything validated: lock, clear if asked, mark
    # one writer for the on-disk cache; other ranks tokenise in memory
    tokenized = tokenize_bundle(data, tokenizer, max_length, cache_dir=Layout(out).cache if writes else None)
    hub = build_tracker_hub(config.tracking, out) if writes else TrackerHub([])
    return RunContext(config, provider, tokenizer, data, tokenized, device, precision, out,
                      environment_info(device, precision), hub, pools)


def run_dir_for(output_dir: Path, method: str, seed: int) -> Path:
    return Layout(output_dir).run_dir(method, seed)


def load_completed(run_dir: Path) -> dict | None:
    path = run_dir / METRICS
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _remove_empty(folder: Path) -> None:
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


def train_method(ctx: RunContext, method: str, seed: int, config: Config, run_dir: Path,
                 extra_callbacks: tuple = (), label: str | None = None) -> TrainOutcome:
    """Build, train and restore the best weights of `method`; shared by runs and search trials."""
    spec = get_method(method)
    release_memory()  # what an earlier run of this process freed goes back to the OS first: the baseline is the same
    baseline_rss = psutil.Process().memory_info().rss  # before the model: what the run itself costs is above this
    set_seed(seed)  # the model (new head, LoRA init, dropout) is built after seeding
    base = ctx.provider.load_model()
    attention = use_training_attention(base, ctx.device)
    head = ctx.provider.head_module_names(base)
    model = spec.make_trainable(base, config.method, head)
    params = count_parameters(model, head)
    params["training_attention"] = attention
    params["base_weights_dtype"] = frozen_weights_dtype(config.base_weights_dtype, method, ctx.precision)
    store_frozen_weights(model, params["base_weights_dtype"])
    args = build_training_args(config.training, config.learning_rate_for(method), seed, run_dir,
                               len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
    tok = ctx.tokenized
    buckets, shapes = run_shapes(config.pad_buckets, tok.train.lengths,
                                 [*tok.validation.lengths, *tok.test.lengths], config.batch_size, seed,
                                 pad_multiple(ctx.precision in ("bf16", "fp16"), ctx.device == "cpu"))
    label = label or f"{method} seed {seed}"
    best = BestModelCallback(config.patience, label=label)
    trainer = build_trainer(config.training, model, ctx.tokenizer, args, ctx.tokenized.train, ctx.tokenized.validation,
                            [best, FiniteLossCallback(), StopOnSignal(), ProgressReporter(label),
                             *budget_callbacks(config.training), *extra_callbacks], head_modules=head,
                            compute_metrics=validation_metrics,
                            head_learning_rate=config.head_lr, pad_lengths=buckets)
    resume = last_checkpoint(run_dir) if config.save_checkpoints else None
    if resume:
        log.info("%s seed %d: resuming from %s", method, seed, resume)
        best.load(resume)
    with MemoryMonitor(baseline_bytes=baseline_rss) as memory, training_section(), progress_logging():
        start = time.perf_counter()
        train_output = trainer.train(resume_from_checkpoint=resume)
        wall = time.perf_counter() - start
        best.restore_best(trainer.model)
    shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # the run is complete: no resume needed
    return TrainOutcome(trainer, best, params, train_output, wall, memory, shapes)


def run_method(ctx: RunContext, method: str, seed: int, force: bool = False) -> dict:
    """Train `method` with `seed`, evaluate on the test set, write the run folder; returns metrics."""
    config = ctx.config.for_method(method)
    run_dir = run_dir_for(ctx.output_dir, method, seed)
    signals.checkpoint()
    done = None if force else load_completed(run_dir)
    if done is not None:
        log.info("%s seed %d: already complete in %s, skipping", method, seed, run_dir)
        return done
    log.info("%s seed %d: training on %d examples (%s, %s)", method, seed, len(ctx.tokenized.train.examples),
             ctx.device, ctx.precision)
    with tracked(lambda: ctx.hub.start_run(f"{method}-seed{seed}", config, {"method": method, "seed": seed}),
                 ctx.hub.end_run) as outcome:
        while True:
            try:
                metrics = _train_and_evaluate(ctx, config, method, seed, run_dir)
                break
            except torch.cuda.OutOfMemoryError:
                if not config.oom_retry or config.batch_size == 1:
                    raise
            # Freed here, after the handler: inside it the traceback still holds the failed run's frames, and
            # with them the model, optimizer states and activations, so gc could not collect them.
            release_memory()
            shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)  # their batch size no longer applies
            config = config.replace(batch_size=config.batch_size // 2,
                                    gradient_accumulation_steps=config.gradient_accumulation_steps * 2)
            log.warning("%s seed %d: CUDA out of memory; retrying with batch_size %d x accumulation %d "
                        "(same effective batch)", method, seed, config.batch_size, config.gradient_accumulation_steps)
        outcome.metrics = {k: metrics[k] for k in ("test", "params", "timing", "memory")}
        outcome.artifacts = [run_dir / n for n in RUN_FILES]
    return metrics


def _train_and_evaluate(ctx: RunContext, config: Config, method: str, seed: int, run_dir: Path) -> dict:
    """Train, test, write the run folder; `config` may differ from ctx.config (OOM retry, overrides)."""
    out = train_method(ctx, method, seed, config, run_dir, extra_callbacks=(ctx.hub.callback(),))
    trainer, best = out.trainer, out.best
    with out.memory:  # keep sampling through the test pass
        probs, predict_seconds = predict_split(trainer, ctx.tokenized.test)

    epochs_run = float(trainer.state.epoch or 0.0)
    wall = out.wall_seconds
    train_only = max(wall - best.eval_seconds, 1e-9)  # exclude validation passes from throughput
    n_train, n_test = len(ctx.tokenized.train.examples), len(ctx.tokenized.test.examples)
    record = RunRecord(
        method=method, seed=seed, model_name=config.model_name, head=ctx.provider.describe().get("head"),
        labels=list(ctx.data.labels), test=split_metrics(ctx.tokenized.test, probs, ctx.data.labels),
        validation={"best_macro_f1": best.best_value, "best_step": best.best_step},
        params=out.params,
        training={
            "epochs_run": epochs_run, "steps": trainer.state.global_step, "stopped_early": best.stopped_early,
            "final_train_loss": out.train_output.training_loss, "learning_rate": config.learning_rate_for(method),
            "head_learning_rate": config.head_lr,
            "max_epochs": config.num_epochs, "patience": config.patience,
            # the declared budget (equal for every method) or each method's own epochs
            "budget": {"unit": config.budget_unit,
                       "value": config.num_epochs if config.budget_unit == "epochs" else config.budget},
            **out.shapes,
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
        },
        memory=out.memory.summary(),
        data={"train": n_train, "validation": len(ctx.tokenized.validation.examples), "test": n_test,
              "max_length": ctx.tokenized.max_length, "fingerprint": ctx.data.fingerprint},
        environment=ctx.environment,
    )
    history = history_of(trainer.state.log_history)
    history["memory_mb"] = out.memory.series
    record.health = run_health(record.test, history, trainer.state.global_step,
                               trainer.args.get_warmup_steps(trainer.state.max_steps))
    for problem in record.health["problems"]:
        log.warning("%s seed %d: %s", method, seed, problem)
    if not is_main():  # every rank trained and evaluated; rank 0 writes
        release_memory()
        return record.to_json()
    if config.save_model:
        target = Path(config.save_dir) / method / seed_dir_name(seed) if config.save_dir else run_dir / MODEL
        record.saved_model = save_trained(trainer.model, ctx.tokenizer, target, method, config.model,
                                          ctx.tokenized.max_length, ctx.data.labels, merged=config.save_merged)
    write_run_files(run_dir, config_to_yaml(config), record, history,
                    prediction_rows(ctx.tokenized.test, probs, ctx.data.labels))
    log.info("%s seed %d: test macro-F1 %.4f, accuracy %.4f (%.0f s)", method, seed,
             record.test["macro_f1"], record.test["accuracy"], wall)
    del trainer, best, out
    release_memory()
    return record.to_json()


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
    args = build_training_args(config.training, config.learning_rate, config.seed, run_dir,  # predicts only
                               len(ctx.tokenized.train.examples), ctx.precision, ctx.device)
    trainer = build_trainer(config.training, model, ctx.tokenizer, args, None, ctx.tokenized.validation, [],
                            compute_metrics=validation_metrics)
    with MemoryMonitor() as memory:
        probs, seconds = predict_split(trainer, ctx.tokenized.test)
    n_test = len(ctx.tokenized.test.examples)
    record = RunRecord(
        method=BASE_METHOD, seed=None, model_name=config.model_name, head=ctx.provider.describe().get("head"),
        labels=list(ctx.data.labels), test=split_metrics(ctx.tokenized.test, probs, ctx.data.labels),
        params={**count_parameters(model, head), "trainable": 0, "trainable_ratio": 0.0},
        timing={"eval_seconds": round(seconds, 3), "eval_samples_per_second": round(n_test / seconds, 3),
                "eval_tokens_per_second": round(ctx.tokenized.test.num_tokens / seconds, 1)},
        memory=memory.summary(), environment=ctx.environment,
    )
    if is_main():
        write_run_files(run_dir, config_to_yaml(config), record, {"train": [], "eval": []},
                        prediction_rows(ctx.tokenized.test, probs, ctx.data.labels))
    _remove_empty(run_dir / CHECKPOINTS)
    del trainer, model
    release_memory()
    return record.to_json()
