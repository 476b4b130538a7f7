"""Logging set-up for the CLI: our messages on stderr, library chatter kept quiet."""

from __future__ import annotations

import logging
import os
import warnings

from .redaction import RedactingFilter


LOG_FORMAT, LOG_DATEFMT = "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"


def setup_logging(level: str = "INFO") -> None:
    debug = level.upper() == "DEBUG"
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=LOG_FORMAT,
        datefmt=LOG_DATEFMT,
    )
    install_redaction()
    # transformers/datasets progress bars and info logs drown our own messages.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # (torch: its exit hook logs fake-tensor cache statistics at INFO, after our last line)
    for name in ("datasets", "peft", "accelerate", "urllib3", "filelock", "httpx", "huggingface_hub", "mlflow",
                 "alembic", "optuna", "torch"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    try:
        import datasets

        datasets.disable_progress_bars()  # "Map: 100%" on every tokenisation
    except ImportError:  # pragma: no cover
        pass
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" on every load
        if not debug:
            # errors only: the per-load "LOAD REPORT" table is a warning; our own log says
            # when a new classification head is created
            hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    # peft calls a deprecated transformers property; nothing for a user to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)


def install_redaction() -> None:
    """Mask secrets (URL passwords, token query values) in every record any handler of the root logger writes."""

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def ensure_api_logging() -> None:
    """Python API: progress at INFO on stderr, unless the caller configured logging (then theirs applies)."""
    root, ours = logging.getLogger(), logging.getLogger("finetune_compare")
    if root.handlers or ours.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))

    handler.addFilter(RedactingFilter())
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
