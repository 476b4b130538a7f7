"""Fine-tuning methods: one module per method, each registering itself (see `registry`).

Training, evaluation and accounting never look at the method; they only see which parameters require
gradients. Adding a method is one module here (and its import below) or in your own code before the
config is built: its settings, its `apply`, its search space, one `register_method` call.
"""

from .registry import REGISTRY, Method, MethodSettings, get_method, method_names, register_method, settings_classes

# the built-in methods, in the order the CLI and the docs list them
from . import full, lora, ia3, vera, head, loha  # noqa: E402,F401  (each registers itself)
from . import generic, adalora  # noqa: E402,F401  (what AdaLoRA adds to peft's type by name: registered when a config names it)

__all__ = ["REGISTRY", "Method", "MethodSettings", "get_method", "method_names", "register_method",
           "settings_classes"]
