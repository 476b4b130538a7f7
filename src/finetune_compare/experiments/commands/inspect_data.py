"""`finetune-compare data`: build the three splits and write their summary (counts, lengths, drops, confounds),
without training."""

from __future__ import annotations

import logging
from pathlib import Path

from ...config import Config
from ...data.build import build_data
from ...data.summary import data_summary
from ...errors import ModelError
from ...layout import Layout
from ...models.hf import build_model_provider, effective_max_length
from ...utils import signals
from ...utils.io import write_json
from ..study.ownership import FolderGuard

log = logging.getLogger(__name__)


def write_data_summary(config: Config, overwrite: bool = False) -> tuple[dict, Path]:
    """The data summary, written to OUTPUT/data_summary.json; token lengths when the tokenizer is available."""
    with FolderGuard(config, overwrite=overwrite) as folder:
        bundle = build_data(config.data, config.experiment.seed)
        signals.checkpoint()
        tokenizer, max_length, note = None, None, ""
        try:
            provider = build_model_provider(config.model)
            tokenizer = provider.load_tokenizer()
            max_length = effective_max_length(config.model, provider, tokenizer)
        except ModelError as exc:
            note = f"not reported: the tokenizer of '{config.model.model_name}' is not available offline ({exc})"
            log.warning("token lengths skipped: %s", exc)
        summary = data_summary(bundle, tokenizer, max_length, note)
        folder.claim()
        write_json(Layout(folder.out).data_summary, summary)
    return summary, Layout(folder.out).data_summary
