"""A short probe of one method's run on this machine: a few optimizer steps and one validation pass through the run's
own code (`run.train_method`: the same model, method, precision, batches and trainer), timed, with its peak memory.

A step's time is set by its batch: a length-grouped batch of tweets is a fraction of a batch of reviews (measured on
the quickstart: 0.16 to 1.9 s), so the mean of a few steps depends on which batches came first. The probe fits
`seconds = fixed + per_token * padded tokens` to its steps, and `cost_plan` sums that over the run's own batches
(the sampler is seeded, so they are known before training) and adds its evaluations. It is an estimate, and says so.

Nothing is written to the results folder and nothing is logged to the trackers: the probe trains in a temporary
folder, on a random sample of the validation split for its one evaluation.
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from ...data.tokenization import TokenizedSplit
from ...evaluation.predict import predict_split
from ...tracking import TrackerHub
from ...training.buckets import bucket_for, run_shapes
from ...training.sampler import round_up, step_token_counts
from ...training.trainer import pad_multiple
from ..execution.context import RunContext
from ..execution.run import train_method

PROBE_STEPS = 10
PROBE_MAX_SECONDS = 120.0  # a probe stops after this many seconds of training (at least 3 steps), whatever its steps
EVAL_SAMPLE_BATCHES = 4  # validation batches timed for the evaluation speed
MAX_EVAL_SAMPLE = 512


@dataclass(frozen=True)
class Probe:
    """What a few steps of one method measured (seconds, MB)."""
    method: str
    steps: int  # optimizer steps trained
    startup_seconds: float  # from building the model to the end of the first step (warm-up included)
    step_seconds: float  # mean of the later steps
    step_seconds_range: tuple[float, float]
    seconds_per_step: float  # the fit: a step's fixed part (optimizer, launch, host work) ...
    seconds_per_token: float  # ... and its part per padded token of its batch
    tokens_range: tuple[int, int]  # padded tokens of the steps fitted
    eval_seconds_per_token: float  # a validation pass, per real (non-pad) token
    peak_rss_mb: float
    peak_rss_above_baseline_mb: float | None
    peak_cuda_mb: float | None
    threads: int
    device: str
    precision: str
    step_ratio_range: tuple[float, float] = (1.0, 1.0)  # each timed step over the fit's time for it: the spread
    load: float | None = None  # the 1-minute load average at the probe's end
    cores: int = 1
    stopped_at_seconds: bool = False  # PROBE_MAX_SECONDS ended it before its steps

    @property
    def busy(self) -> bool:
        """More runnable work than cores while it ran: its times say little about this machine at rest."""
        return self.load is not None and self.load > self.cores

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class StepClock(TrainerCallback):
    """The end time of every optimizer step; a step that an evaluation ran after is left out of the pace. Stops the
    probe after `max_seconds` of training once 3 steps are timed (a slow model or machine bounds the probe in time)."""

    def __init__(self, cuda: bool, max_seconds: float = PROBE_MAX_SECONDS):
        self.cuda = cuda
        self.max_seconds = max_seconds
        self.start: float | None = None
        self.stopped = False
        self.ends: list[float] = []
        self.after_eval: set[int] = set()  # indices into ends whose interval holds an evaluation

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.cuda:  # kernels run asynchronously: a step ends when the GPU is done with it
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())
        if len(self.ends) >= 3 and self.start is not None and self.ends[-1] - self.start > self.max_seconds:
            control.should_training_stop = self.stopped = True
            control.should_evaluate = True  # the probe times its one validation pass too

    def on_evaluate(self, args, state, control, **kwargs):
        self.after_eval.add(len(self.ends))  # the interval ending at the next step

    def steady_steps(self) -> list[tuple[int, float]]:
        """(step index from 0, seconds) of every step after the first that no evaluation ran before."""
        return [(i, self.ends[i] - self.ends[i - 1]) for i in range(1, len(self.ends)) if i not in self.after_eval]


def step_tokens(ctx: RunContext, config, steps: int) -> list[int]:
    """Padded tokens of the first `steps` optimizer steps of a run of `config` with seed config.experiment.seed."""
    t, tok = config.training, ctx.tokenized
    multiple = pad_multiple(ctx.precision in ("bf16", "fp16"), ctx.device == "cpu")
    buckets, _ = run_shapes(t.pad_buckets, tok.train.lengths, [*tok.validation.lengths, *tok.test.lengths],
                            t.batch_size, config.experiment.seed, multiple)
    if buckets:
        pad_to = lambda m: bucket_for(m, buckets)  # noqa: E731
    else:
        pad_to = (lambda m: round_up(m, multiple)) if multiple else None
    return step_token_counts(tok.train.lengths, t.batch_size, t.gradient_accumulation_steps, config.experiment.seed,
                             t.batch_grouping, steps, pad_to)


def fit_step_time(tokens: list[int], seconds: list[float]) -> tuple[float, float]:
    """(fixed, per token) by least squares, both kept >= 0; with too few or too alike batches, all per token."""
    import numpy as np

    x, y = np.asarray(tokens, dtype=float), np.asarray(seconds, dtype=float)
    if len(x) >= 3 and x.max() > 1.2 * x.min():
        per_token, fixed = np.polyfit(x, y, 1)
        if per_token >= 0 and fixed >= 0:
            return float(fixed), float(per_token)
        if per_token < 0:  # the batch size does not show: a constant step
            return float(y.mean()), 0.0
    return 0.0, float(y.sum() / max(1.0, x.sum()))


def eval_sample(split: TokenizedSplit, size: int, seed: int) -> TokenizedSplit:
    """A random sample of `split` (the validation pass is timed on it and scaled by tokens)."""
    if size >= len(split.examples):
        return split
    rows = sorted(random.Random(seed).sample(range(len(split.examples)), size))
    return TokenizedSplit(split.dataset.select(rows), [split.examples[i] for i in rows],
                          [split.lengths[i] for i in rows])


def step_ratios(tokens: list[int], seconds: list[float], fixed: float, per_token: float) -> tuple[float, float]:
    """(lowest, highest) of each timed step's seconds over what the fit gives for its batch."""
    ratios = [s / (fixed + per_token * n) for n, s in zip(tokens, seconds) if fixed + per_token * n > 0]
    return (round(min(ratios), 3), round(max(ratios), 3)) if ratios else (1.0, 1.0)


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def probe_method(ctx: RunContext, method: str, steps: int = PROBE_STEPS, threads: int | None = None) -> Probe:
    """Train `method` for `steps` optimizer steps as its runs would (seed `config.experiment.seed`), then time a
    validation pass; `threads`: the torch threads a run would get (a Ray task's cpus_per_run), for the probe only."""
    config = ctx.config.for_method(method)
    size = min(MAX_EVAL_SAMPLE, EVAL_SAMPLE_BATCHES * config.training.eval_batch_size)
    sample = eval_sample(ctx.tokenized.validation, size, config.experiment.seed)
    # one evaluation, at the last step (the run's own interval would evaluate inside the few steps)
    probe_config = config.replace(budget_unit="steps", budget=steps, evaluations_per_epoch=1, patience=0,
                                  save_checkpoints=False, save_model=False, method_overrides={})
    probe_ctx = dataclasses.replace(ctx, tokenized=dataclasses.replace(ctx.tokenized, validation=sample),
                                    hub=TrackerHub([]))
    cuda = ctx.device == "cuda"
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(cuda)
    try:
        with tempfile.TemporaryDirectory(prefix="finetune-compare-probe-") as tmp:
            start = time.perf_counter()
            out = train_method(probe_ctx, method, config.experiment.seed, probe_config, Path(tmp) / "run",
                               extra_callbacks=(clock,), label=f"{method} probe")
            with out.memory:
                predict_split(out.trainer, sample)  # warm: the trainer's own evaluation ran first
                _, seconds_eval = predict_split(out.trainer, sample)
            memory = out.memory.summary()
            used_threads = torch.get_num_threads()
            del out
    finally:
        torch.set_num_threads(before)
    steady = clock.steady_steps() or [(0, clock.ends[-1] - start)]
    tokens = step_tokens(probe_ctx, probe_config, len(clock.ends))
    seconds = [d for _, d in steady]
    fixed, per_token = fit_step_time([tokens[i] for i, _ in steady], seconds)
    return Probe(step_ratio_range=step_ratios([tokens[i] for i, _ in steady], seconds, fixed, per_token),
                 load=_load(), cores=os.cpu_count() or 1, stopped_at_seconds=clock.stopped, method=method,
                 steps=len(clock.ends), startup_seconds=round(clock.ends[0] - start, 3),
                 step_seconds=round(sum(seconds) / len(seconds), 4),
                 step_seconds_range=(round(min(seconds), 4), round(max(seconds), 4)),
                 seconds_per_step=fixed, seconds_per_token=per_token,
                 tokens_range=(min(tokens[i] for i, _ in steady), max(tokens[i] for i, _ in steady)),
                 eval_seconds_per_token=seconds_eval / max(1, sample.num_tokens),
                 peak_rss_mb=memory["peak_rss_mb"], peak_rss_above_baseline_mb=memory.get("peak_rss_above_baseline_mb"),
                 peak_cuda_mb=memory["peak_cuda_mb"] if cuda else None, threads=used_threads, device=ctx.device,
                 precision=ctx.precision)
