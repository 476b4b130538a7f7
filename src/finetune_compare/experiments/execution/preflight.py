"""Checks a command makes before it claims its output folder: every method's settings against the model, every batch
against the data, the folder models are saved to. They write nothing."""

from __future__ import annotations

from ...config import Config
from ...data.build import DataBundle
from ...errors import DataError
from ...methods import get_method
from ...metric_names import primary_metric_names
from ...methods.targets import check_method
from ...models.base import BaseModel
from ...models.frozen_weights import frozen_weights_dtype
from ...utils.io import creation_problem


def check_data_fits(config: Config, data: DataBundle, methods: list[str] | None = None) -> None:
    """Every method's batch (its method_overrides included) fits the training data, and the primary metric is a
    score of this data (a group of your own data is known only now)."""
    name = config.experiment.primary_metric
    allowed = primary_metric_names(sorted({e.source for e in data.test}), bool(data.holdout))
    if name not in allowed:
        raise DataError(f"primary_metric {name!r} is not a score of this data; allowed: {', '.join(allowed)}")
    n_train = len(data.train)
    for method in [None, *(methods or config.method.methods)]:
        size = (config.for_method(method) if method else config).batch_size
        if n_train < size:
            overridden = method and size != config.training.batch_size
            where = f"method_overrides.{method}.batch_size" if overridden else "batch_size"
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
    if not (config.experiment.save_model and config.experiment.save_dir):
        return
    problem = creation_problem(config.experiment.save_dir)
    if problem:
        raise DataError(f"config key 'save_dir': {problem}, so models cannot be saved there")
