"""Progress a user can see: a bar over training steps (on a terminal) and one log line per evaluation.

The bar (tqdm, on stderr) shows epoch, loss and the ETA; it is off when stderr is not a terminal
(CI logs, pipes) or with `--quiet`. The per-evaluation line is always logged at INFO, e.g.
"lora seed 43: step 68/204 (epoch 1.00), val macro-F1 0.5670, ETA 1m10s".
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time

from transformers import TrainerCallback

from ..budgets import plural

log = logging.getLogger(__name__)

QUIET = False  # set by the CLI's --quiet


def bars_enabled() -> bool:
    return not QUIET and sys.stderr.isatty()


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


def progress_logging():
    """Route log records through tqdm while a bar is shown, so lines print above it instead of through it."""
    if not bars_enabled():
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


class ProgressReporter(TrainerCallback):
    def __init__(self, label: str, metric: str = "eval_macro_f1"):
        self.label = label
        self.metric = metric
        self.bar = None
        self.start = 0.0
        self.start_step = 0
        self.loss: float | None = None

    def _eta(self, state) -> float | None:
        done = state.global_step - self.start_step
        if done <= 0:
            return None
        return (time.perf_counter() - self.start) / done * (state.max_steps - state.global_step)

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.start_step = time.perf_counter(), state.global_step
        if args.max_steps > 0:  # a declared budget in steps or examples sets the count, not num_epochs
            log.info("%s: %d optimizer steps (the declared budget)", self.label, state.max_steps)
        else:
            log.info("%s: %d optimizer steps over up to %s", self.label, state.max_steps,
                     plural(f"{args.num_train_epochs:g}", "epoch"))
        if bars_enabled():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.label, unit="step",
                            file=sys.stderr, leave=False, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            post = {"epoch": f"{state.epoch or 0:.2f}"}
            if self.loss is not None:
                post["loss"] = f"{self.loss:.4f}"
            self.bar.set_postfix(post, refresh=False)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is None:
            return
        eta = self._eta(state)
        message = (f"{self.label}: step {state.global_step}/{state.max_steps} (epoch {state.epoch or 0:.2f}), "
                   f"val {self.metric.removeprefix('eval_').replace('_f1', '-F1')} {value:.4f}"
                   + (f", ETA {format_seconds(eta)}" if eta is not None else ""))
        log.info(message)  # printed above the bar: training runs inside `progress_logging()`

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
