"""finetune-compare: LoRA or full fine-tuning? A fair, reproducible comparison."""

from .config import Config, load_config
from .errors import ConfigError, DataError, ModelError, UserError

__version__ = "0.1.0"

__all__ = [
    "BaseModel", "ComparisonExperiment", "Config", "ConfigError", "DataError", "ModelError", "UserError",
    "load_config", "__version__",
]


def __getattr__(name: str):
    # Heavy modules (torch, transformers) load only when these are used, so that
    # `from finetune_compare import Config` and the CLI's config errors stay fast.
    if name == "BaseModel":
        from .models.base import BaseModel

        return BaseModel
    if name == "ComparisonExperiment":
        from .experiments.commands.compare import ComparisonExperiment

        return ComparisonExperiment
    raise AttributeError(name)
