"""Trainer construction: the same path for every method.

transformers' Trainer does the loop (AdamW, warmup + linear decay, clipping,
accumulation, mixed precision, gradient checkpointing, DDP). We add:
- the length-grouped shuffled sampler (see sampler.py);
- early stopping with best-model restore kept *in memory*: the stock
  EarlyStoppingCallback needs `load_best_model_at_end`, which writes a full checkpoint
  (weights + optimizer state, ~1.5 GB for RoBERTa-base) at every evaluation; copying
  only the trainable tensors costs a few MB for LoRA and one model copy for full FT;
- a guard that stops a run whose loss becomes NaN/inf instead of training on garbage.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from pathlib import Path

import torch
from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..config import TrainingConfig
from ..layout import CHECKPOINTS
from ..errors import UserError
from ..utils.distributed import world_size
from ..utils.signals import note, raise_if_requested
from .buckets import BucketCollator
from .sampler import LengthGroupedShuffledSampler

log = logging.getLogger(__name__)

BEST_METRIC = "eval_macro_f1"


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite."""


class BestModelCallback(TrainerCallback):
    """Keeps the trainable weights of the best evaluation and stops after `patience` evaluations without gain."""

    def __init__(self, patience: int, metric: str = BEST_METRIC, label: str = "run"):
        self.patience = patience
        self.label = label
        self.metric = metric
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_evaluations = 0
        self.stopped_early = False
        self.eval_seconds = 0.0

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        metrics = metrics or {}
        self.eval_seconds += float(metrics.get("eval_runtime", 0.0))
        value = metrics.get(self.metric)
        if value is None or model is None:
            return
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_step, self.bad_evaluations = float(value), state.global_step, 0
            self.best_state = {
                n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
            }
        else:
            self.bad_evaluations += 1
            if self.patience and self.bad_evaluations >= self.patience:
                log.info("%s: early stopping at step %d: no %s gain in %d evaluations (best %.4f at step %d)",
                         self.label, state.global_step, self.metric, self.patience, self.best_value, self.best_step)
                self.stopped_early = True
                control.should_training_stop = True

    # Persisted beside each checkpoint, so a resumed run keeps its best weights and patience count.
    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            torch.save({"best_state": self.best_state, "best_value": self.best_value, "best_step": self.best_step,
                        "bad_evaluations": self.bad_evaluations, "eval_seconds": self.eval_seconds},
                       folder / "best_model_callback.pt")

    def load(self, checkpoint: str | Path) -> None:
        path = Path(checkpoint) / "best_model_callback.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=True)
            self.best_state, self.best_value = saved["best_state"], saved["best_value"]
            self.best_step, self.bad_evaluations = saved["best_step"], saved["bad_evaluations"]
            self.eval_seconds = saved["eval_seconds"]

    def restore_best(self, model: torch.nn.Module) -> None:
        if self.best_state is None:
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, saved in self.best_state.items():
                params[name].copy_(saved.to(params[name].device))


class FiniteLossCallback(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingDivergedError(
                f"training loss became {loss} at step {state.global_step}; stopped instead of training on garbage. "
                "Lower the learning rate, keep max_grad_norm > 0, or use mixed_precision: bf16/no instead of fp16"
            )


class StopOnSignal(TrainerCallback):
    """Raises a deferred Ctrl-C / SIGTERM at a step boundary (see utils/signals.py)."""

    def on_step_end(self, args, state, control, **kwargs):
        raise_if_requested()

    def on_evaluate(self, args, state, control, **kwargs):
        raise_if_requested()


class CheckpointInterval(TrainerCallback):
    """Thins the Trainer's checkpoints (one per evaluation) to one per `minutes` of training, and keeps the stop
    message true about what an interrupt would keep.

    Why by time: a checkpoint of RoBERTa-base with its optimizer state is ~1.5 GB, so one per evaluation can cost more
    than the evaluations; one per 5 minutes bounds the work an interrupt loses to about 5 minutes at a small cost.
    The step that ends training is not checkpointed: the run saves its trained weights right after (trained_run.py).
    """

    def __init__(self, minutes: float | None, label: str, unkept: str | None = None):
        self.seconds = None if minutes is None else 60.0 * minutes  # None: checkpoints are off
        self.label = label
        # what the stop message says of this run when it is not checkpointed (a search trial: not counted, replaced)
        self.unkept = unkept or "is not checkpointed (save_checkpoints: false): the rerun starts it again"
        self.last = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()
        if self.seconds is None:
            note(f"{self.label} {self.unkept}")
        elif state.global_step:
            note(f"{self.label} resumed at step {state.global_step}; its checkpoint is kept: the rerun resumes there")
        else:
            note(f"{self.label} had no checkpoint yet (one every {self.seconds / 60:g} min of training): the rerun "
                 "starts it again")

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save and (state.global_step >= state.max_steps
                                    or time.perf_counter() - self.last < (self.seconds or 0.0)):
            control.should_save = False

    def on_save(self, args, state, control, **kwargs):
        self.last = time.perf_counter()
        note(f"{self.label}'s checkpoint at step {state.global_step} is kept: the rerun resumes training there")


class ExperimentTrainer(Trainer):
    """Trainer with the project's batch sampler."""

    def __init__(self, *args, train_lengths=None, batch_grouping: str = "length", head_modules=(),
                 head_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_modules = tuple(head_modules)
        self.head_learning_rate = head_learning_rate
        # our own logging reports progress; the Trainer would print every log dict to stdout
        self.remove_callback(PrinterCallback)
        self.remove_callback(ProgressCallback)
        self.train_lengths = train_lengths
        self.batch_grouping = batch_grouping

    def create_optimizer(self, model=None):
        """The Trainer's AdamW groups (decay / no decay), each split so the head gets `head_learning_rate`."""
        optimizer = super().create_optimizer(model)
        if self.head_learning_rate is None or self.head_learning_rate == self.args.learning_rate:
            return optimizer
        model = self.model if model is None else model
        head_ids = {id(p) for n, p in model.named_parameters() if is_head_parameter(n, self.head_modules)}
        groups = []
        for group in optimizer.param_groups:
            rest = {k: v for k, v in group.items() if k != "params"}
            for in_head in (False, True):
                params = [p for p in group["params"] if (id(p) in head_ids) == in_head]
                if params:
                    groups.append({**rest, "params": params, **({"lr": self.head_learning_rate} if in_head else {})})
        accepted = inspect.signature(type(optimizer).__init__).parameters  # defaults hold derived keys too
        self.optimizer = type(optimizer)(groups, **{k: v for k, v in optimizer.defaults.items() if k in accepted})
        return self.optimizer

    def _get_train_sampler(self, train_dataset=None):
        if self.batch_grouping == "length" and self.train_lengths is not None:
            return LengthGroupedShuffledSampler(self.train_lengths, self.args.train_batch_size, self.args.seed)
        return super()._get_train_sampler(train_dataset)


def is_head_parameter(name: str, head_modules) -> bool:
    """`classifier.dense.weight`, or under peft `base_model.model.classifier.modules_to_save.default.dense.weight`."""
    dotted = f".{name}."
    return any(name.startswith(f"{h}.") or f".{h}." in dotted for h in head_modules)


def classification_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy summed over the micro-batch and divided by the examples in the whole optimizer step.

    Why: transformers 5 passes `num_items_in_batch` to any model whose forward takes **kwargs and then
    skips its own division by the accumulation steps; sequence classifiers ignore that argument and
    return a micro-batch mean, so 8 x 2 accumulation summed two means (measured: loss 2.03 vs 1.02 for
    batch 16, and a grad norm ~1.6x larger). Passed as the Trainer's `compute_loss_func`, this makes
    any accumulation (and DDP, where the Trainer gathers the count) equal to one large batch.
    Evaluation passes no count: a plain mean.
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels.to(logits.device), reduction="sum")
    loss = loss / (labels.numel() if num_items_in_batch is None else
                   torch.as_tensor(num_items_in_batch, device=loss.device, dtype=loss.dtype))
    if isinstance(outputs, dict) and outputs.get("loss_is_regularization"):  # a method's penalty (AdaLoRA's), as
        loss = loss + outputs["loss"].float()  # peft adds it to the model's own loss: once per forward pass
    return loss


def _steps_for(examples: float, config: TrainingConfig, world_size: int) -> int:
    """Optimizer steps that see `examples` training examples (every rank's batches, accumulation included)."""
    return max(1, math.ceil(examples / (config.batch_size * config.gradient_accumulation_steps * world_size)))


def steps_per_epoch(config: TrainingConfig, n_train: int, world_size: int = 1) -> int:
    return _steps_for(n_train, config, world_size)


def budget_steps(config: TrainingConfig, world_size: int = 1) -> int | None:
    """The optimizer steps a declared budget in steps or examples allows (None: num_epochs sets them)."""
    if config.budget_unit == "steps":
        return max(1, math.ceil(config.budget))
    if config.budget_unit == "examples":
        return _steps_for(config.budget, config, world_size)
    return None


def planned_steps(config: TrainingConfig, n_train: int, world_size: int = 1) -> int:
    """The optimizer steps a run is set up for (a time budget may stop it earlier)."""
    return budget_steps(config, world_size) or steps_per_epoch(config, n_train, world_size) * config.num_epochs


def evaluation_interval(config: TrainingConfig, n_train: int, world_size: int = 1) -> int:
    """Optimizer steps between validation passes: at least evaluations_per_epoch of them per epoch, also when the
    budget is shorter than an epoch."""
    per_epoch = steps_per_epoch(config, n_train, world_size)
    return max(1, min(per_epoch, budget_steps(config, world_size) or per_epoch) // config.evaluations_per_epoch)


class WallTimeBudget(TrainerCallback):
    """budget_unit 'seconds': stop once the run has trained (evaluations included) for `seconds`."""

    def __init__(self, seconds: float):
        self.seconds, self.start, self.stopped = seconds, None, False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is not None and time.perf_counter() - self.start >= self.seconds:
            control.should_training_stop = self.stopped = True
            control.should_evaluate = True  # the last steps count for the checkpoint choice too


def budget_callbacks(config: TrainingConfig) -> list:
    return [WallTimeBudget(config.budget)] if config.budget_unit == "seconds" else []


def build_training_args(
    config: TrainingConfig, learning_rate: float, seed: int, run_dir: Path, n_train: int, precision: str, device: str
) -> TrainingArguments:
    """The Trainer's arguments for one run: the training section, plus the method's learning rate."""
    per_epoch = steps_per_epoch(config, n_train, world_size())  # each rank takes its share of batches
    fixed = budget_steps(config, world_size())  # a declared budget in steps or examples: the same for every method
    eval_steps = evaluation_interval(config, n_train, world_size())
    return TrainingArguments(
        output_dir=str(run_dir / CHECKPOINTS),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_train_epochs=config.num_epochs,
        max_steps=fixed or -1,  # overrides num_train_epochs when a budget in steps or examples is declared
        learning_rate=learning_rate,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=eval_steps,
        # offered at every evaluation; CheckpointInterval keeps one per checkpoint_minutes of training
        save_strategy="steps" if config.save_checkpoints else "no",
        save_steps=eval_steps,
        save_total_limit=1 if config.save_checkpoints else None,
        logging_strategy="steps",
        logging_steps=max(1, per_epoch // 10),
        logging_nan_inf_filter=False,  # the default hides NaN/inf losses from the logs: we must see them to stop
        report_to="none",  # trackers observe our events; the Trainer must not double-log
        seed=seed,
        data_seed=seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        activation_checkpointing=config.gradient_checkpointing,  # transformers 5's name for it
        # LoRA freezes the inputs of checkpointed blocks: reentrant checkpointing would drop their grads
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        dataloader_num_workers=config.num_workers,
        ddp_backend="gloo" if device == "cpu" and world_size() > 1 else None,  # torchrun on CPU
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=True,
        log_level="error",
    )


def pad_multiple(mixed_precision: bool, on_cpu: bool) -> int | None:
    """What the collator pads batch lengths up to: multiples of 8 feed GPU tensor cores in fp16/bf16; on CPU they
    only add padding (measured: 2% -> 7%)."""
    return 8 if mixed_precision and not on_cpu else None


def build_trainer(
    config: TrainingConfig, model, tokenizer, args: TrainingArguments, train_split, val_split, callbacks,
    head_modules=(), compute_metrics=None, head_learning_rate: float | None = None, pad_lengths=None,
) -> ExperimentTrainer:
    """`head_learning_rate`: the head's rate under every method (MethodConfig.head_lr). `compute_metrics` scores
    each validation pass (evaluation.metrics.validation_metrics: the caller hands it
    over, so training does not depend on the evaluation stage)."""
    if pad_lengths:  # pad_buckets: a few static shapes
        collator = BucketCollator(tokenizer, pad_lengths)
    else:
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(args.fp16 or args.bf16,
                                                                                      args.use_cpu))
    return ExperimentTrainer(
        model=model,
        args=args,
        train_dataset=train_split.dataset if train_split is not None else None,
        eval_dataset=val_split.dataset if val_split is not None else None,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        compute_loss_func=classification_loss,
        callbacks=callbacks,
        train_lengths=train_split.lengths if train_split is not None else None,
        batch_grouping=config.batch_grouping,
        head_modules=head_modules,
        # one rate for the head under every method: otherwise LoRA's 25x higher rate also trains the head
        head_learning_rate=head_learning_rate,
    )
