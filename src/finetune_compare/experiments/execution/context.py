"""The context every run of a command shares, built once after the pre-run checks: the checked config, the model
provider, tokenizer, data and its tokenised splits, the device and precision, the trackers. `prepare_context()`
checks the folder (or takes the command's FolderGuard), validates model and data, claims the folder, then tokenises;
`build_context()` is the same without a claim (a cost plan writes nothing). `context_for_pair()` gives pair k its
own data draw.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...config import Config
from ...data.build import DataBundle, DataPools, build_data, load_pools
from ...data.tokenization import TokenizedData, tokenize_bundle
from ...layout import Layout
from ...models.base import BaseModel
from ...models.hf import build_model_provider, effective_max_length
from ...tracking import TrackerHub, build_tracker_hub
from ...training.device import choose_precision, resolve_device
from ...training.precision_probe import PrecisionChoice, cpu_bf16_path, cpu_model
from ...utils import signals
from ...utils.distributed import is_main
from ..study.ownership import FolderGuard
from ..study.study_plan import PairPlan
from .preflight import check_data_fits, check_methods, check_save_dir

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


def context_for_pair(ctx: RunContext, pair: PairPlan) -> RunContext:
    """The pair's data: with resample_data_per_run, its own training sample and validation split (drawn with the
    pair's seed), shared by every method of the pair; the test set is the same for all pairs. Pair 0 uses the base
    draw."""
    if not ctx.config.experiment.resample_data_per_run or pair.k == 0 or ctx.pools is None:
        return ctx
    data = build_data(ctx.config.data, ctx.config.experiment.seed, data_seed=pair.seed, pools=ctx.pools)
    check_data_fits(ctx.config, data)
    tokenized = tokenize_bundle(data, ctx.tokenizer, ctx.tokenized.max_length,
                                cache_dir=Layout(ctx.output_dir).cache if is_main() else None)
    return dataclasses.replace(ctx, data=data, tokenized=tokenized)


def environment_info(device: str, precision: str, choice: PrecisionChoice | None = None) -> dict:
    """What a run's numbers depend on beyond its config: the machine (its CPU's bf16 path), the precision chosen and
    why, and every library whose version can move a result."""
    import datasets
    import numpy
    import peft
    import tokenizers
    import transformers

    info = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_bf16": cpu_bf16_path(), "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "tokenizers": tokenizers.__version__, "datasets": datasets.__version__,
        "numpy": numpy.__version__, "device": device, "precision": precision,
        **(choice.record() if choice else {}), "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def layer_shapes(provider: BaseModel, config: Config) -> tuple[int, int, int]:
    """(hidden size, MLP size, rows of a training batch) of the model to train: what the precision probe times."""
    hf = getattr(provider, "hf_config", None)
    hidden = int(getattr(hf, "hidden_size", None) or getattr(hf, "dim", None) or 768)
    intermediate = int(getattr(hf, "intermediate_size", None) or getattr(hf, "hidden_dim", None) or 4 * hidden)
    return hidden, intermediate, config.training.batch_size * (config.model.max_length or 128)


def prepare_context(config: Config, provider: BaseModel | None = None, output_dir: str | Path | None = None,
                    overwrite: bool = False, methods: list[str] | None = None,
                    pools: DataPools | None = None, folder: FolderGuard | None = None) -> RunContext:
    """Validate everything that needs no training, then claim the output folder, then tokenise.

    Nothing is written (and nothing is deleted by --overwrite) before the config, the model and
    the data have been checked, so a failing command never blocks or damages the folder. The commands pass the
    `folder` they entered (it releases the lock when the command ends); without one (a script, a test), the folder
    is checked here and its lock is held until the process ends.
    """
    if folder is None:
        folder = FolderGuard(config, output_dir, overwrite).check()  # never mix results of two configurations
    return build_context(config, folder.out, provider, methods, pools, claim=folder.claim)


def build_context(config: Config, out: Path, provider: BaseModel | None = None, methods: list[str] | None = None,
                  pools: DataPools | None = None, claim=None) -> RunContext:
    """The checked model and data of `config`; `claim()` is called once they are checked and before anything is
    written. Without `claim` (a cost plan) nothing is written: no token cache, no trackers."""
    if config.training.num_threads:
        torch.set_num_threads(config.training.num_threads)
    device = resolve_device(config.training.device)
    if device == "cuda" and config.training.gpu_memory_fraction:
        torch.cuda.set_per_process_memory_fraction(config.training.gpu_memory_fraction)
    provider = provider or build_model_provider(config.model)  # fails fast on a bad model name
    choice = choose_precision(config.training.mixed_precision, device, layer_shapes(provider, config),
                              config.training.prefer_memory_over_speed)
    precision = choice.precision
    signals.checkpoint()
    check_methods(config, provider, list(methods or config.method.methods), precision)
    check_save_dir(config)
    tokenizer = provider.load_tokenizer()
    max_length = effective_max_length(config.model, provider, tokenizer)
    pools = pools or load_pools(config.data)
    data = build_data(config.data, config.experiment.seed, pools=pools)
    check_data_fits(config, data, list(methods or config.method.methods))
    provider.use_labels(data.labels)  # the head predicts the data's classes
    signals.checkpoint()
    writes = claim is not None and is_main()
    if writes:
        claim()  # everything validated: lock, clear if asked, mark
    # one writer for the on-disk cache; other ranks tokenise in memory
    tokenized = tokenize_bundle(data, tokenizer, max_length, cache_dir=Layout(out).cache if writes else None)
    hub = build_tracker_hub(config.tracking, out) if writes else TrackerHub([])
    return RunContext(config, provider, tokenizer, data, tokenized, device, precision, out,
                      environment_info(device, precision, choice), hub, pools)
