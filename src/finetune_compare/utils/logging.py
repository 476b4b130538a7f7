"""Logging set-up for the CLI: our messages on stderr, library chatter kept quiet."""

from __future__ import annotations

import logging
import os
import warnings


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # transformers/datasets progress bars and info logs drown our own messages.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "datasets", "peft", "accelerate", "urllib3", "filelock", "httpx", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING if level.upper() != "DEBUG" else logging.DEBUG)
    warnings.filterwarnings("ignore", message=".*TypedStorage is deprecated.*")
