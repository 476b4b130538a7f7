"""VeRA (Kopiczko et al. 2024): one pair of frozen random matrices shared by every layer, trained scaling vectors."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import ModelError
from ..fields import setting
from .registry import ADAPTER_EPOCHS, Method, MethodSettings, register_method
from .targets import targets_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VeraSettings(MethodSettings):
    prefix = "vera"
    learning_rate: float = setting(4e-3, "Learning rate for VeRA's scaling vectors.", min=0, exclusive_min=True)
    r: int = setting(1024, "VeRA rank of the shared random projections (the paper's RoBERTa-base value; only "
                     "vectors are trained).", min=1)
    target_modules: list[str] = setting(["query", "value"], "VeRA: layer name suffixes that get adapters.",
                                        nonempty=True)


def check_vera(model, settings: VeraSettings, targets: list[str]) -> None:
    """VeRA's rank may exceed a layer's width (the paper's 1024 on 768-wide RoBERTa-base), so no width bound applies;
    its shared projections (r x (widest input + widest output), fp32) must fit in memory instead."""
    import psutil

    modules = dict(model.named_modules())
    layers = [modules[n] for n in targets if hasattr(modules[n], "in_features")]
    if not layers:
        return
    per_rank = 4 * (max(m.in_features for m in layers) + max(m.out_features for m in layers))
    available = psutil.virtual_memory().available
    if settings.r * per_rank > available / 2:  # the projections, their copy in the saved adapter, the model itself
        raise ModelError(f"{settings.key_name('r')} {settings.r} needs {settings.r * per_rank / 2**30:.1f} GiB for "
                         f"VeRA's shared projections, more than half of the {available / 2**30:.1f} GiB of memory "
                         f"available; use {settings.key_name('r')} <= {int(available / 2 / per_rank)}")


def apply_vera(model, settings: VeraSettings, head: list[str]):
    from peft import TaskType, VeraConfig, get_peft_model

    targets = targets_of(model, settings, "target_modules", head)
    modules = dict(model.named_modules())
    shapes = {(modules[n].in_features, modules[n].out_features) for n in targets if hasattr(modules[n], "in_features")}
    if len(shapes) > 1:  # peft shares one projection pair sized for the largest layer; say what is adapted
        log.info("VeRA targets have %d layer shapes; the shared projections are sized for the largest", len(shapes))
    return get_peft_model(model, VeraConfig(task_type=TaskType.SEQ_CLS, r=settings.r, target_modules=targets,
                                            vera_dropout=0.0, save_projection=True, modules_to_save=list(head)))


register_method(Method(
    "vera", "VeRA: shared frozen random low-rank matrices with trained scaling vectors + the full head", apply_vera,
    VeraSettings, {"vera_learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
                   "vera_r": {"type": "categorical", "choices": [64, 256, 1024]}, "num_epochs": ADAPTER_EPOCHS},
    targets_field="target_modules", check=check_vera,
))
