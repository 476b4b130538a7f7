"""What a user sees while training: one line per evaluation with the ETA, labelled with the run."""

import logging
import re

import pytest

from finetune_compare.experiments.execution.context import prepare_context

from finetune_compare.experiments.execution.run import run_method
from finetune_compare.training.progress import format_seconds

pytestmark = pytest.mark.slow


def test_every_evaluation_logs_step_metric_and_eta(tiny_bert, make_config, caplog):
    cfg = make_config(tiny_bert, num_epochs=2, evaluations_per_epoch=2)
    with caplog.at_level(logging.INFO, logger="finetune_compare"):
        run_method(prepare_context(cfg), "lora", cfg.seed)
    lines = [r.getMessage() for r in caplog.records if "val macro-F1" in r.getMessage()]
    assert len(lines) == 4, lines
    assert re.fullmatch(r"lora seed 7: step \d+/\d+ \(epoch \d\.\d\d\), val macro-F1 0\.\d{4}, ETA \d+s", lines[0])
    assert lines[-1].endswith("ETA 0s")


def test_format_seconds():
    assert [format_seconds(s) for s in (4.4, 70, 3725)] == ["4s", "1m10s", "1h02m"]
