"""peft's method types by name, read without importing peft (or torch), and the ones that cannot train an encoder
classifier, each with its reason.

Any `peft.PeftType` is a method here by its lower-case name (`oft`, `lokr`, `hra`, ...): `generic.py` builds it from
peft's own config class when a config names it. Reading the names must stay cheap, because the config validates
`methods` before any heavy import: `peft/utils/peft_types.py` imports only `enum`, so it is loaded on its own.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

# Types that cannot train a sequence classifier on an encoder (BERT, RoBERTa): refused by name, before any model
# loads. The compatibility matrix (tests/methods/test_peft_matrix.py) holds that each of these fails there, and that
# every other type trains, saves and reloads on at least one of the two architectures.
REFUSED = {
    "adaption_prompt": "made for decoders: peft supports it for LLaMA-style attention only (\"Unsupported model type "
                       "for adaption prompt: 'bert'\")",
    "prefix_tuning": "needs a model that takes past key values (a decoder's cache); an encoder takes none (peft: "
                     "\"Model does not support past key values which are required for prefix tuning\")",
    "cartridge": "a prefix-tuning variant: needs a model that takes past key values (a decoder's cache), which an "
                 "encoder does not",
    "multitask_prompt_tuning": "needs a task id for every example (multi-task prompt tuning); a single-task "
                               "classifier has none (peft: \"task_ids cannot be None\")",
    "poly": "needs a task id for every example (a multi-task mixture of adapters); a single-task classifier has none",
    "xlora": "mixes LoRA adapters trained beforehand (its `adapters` setting) inside a decoder with use_cache=False; "
             "it does not train a classifier from scratch",
    "cpt": "peft supports it for causal language models only (\"CPTConfig only supports task_type = CAUSAL_LM\")",
    "trainable_tokens": "trains chosen rows of the token embedding (its `token_indices`), not a classifier: with no "
                        "indices it trains nothing, and peft fails on float indices",
    "shadow": "fails on BERT and RoBERTa in peft 0.21.2 (\"'ShadowCarrier' object has no attribute 'view'\")",
}


@functools.lru_cache(maxsize=1)
def peft_type_names() -> tuple[str, ...]:
    """Every `peft.PeftType`, lower case, in peft's order; () when peft is not installed."""
    try:
        spec = importlib.util.find_spec("peft")
    except (ImportError, ValueError):
        return ()
    if spec is None or not spec.submodule_search_locations:
        return ()
    path = Path(next(iter(spec.submodule_search_locations))) / "utils" / "peft_types.py"
    module_spec = importlib.util.spec_from_file_location("_finetune_compare_peft_types", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return tuple(t.value.lower() for t in module.PeftType)


def is_peft_type(name: str) -> bool:
    return name in peft_type_names()


def refusal(name: str) -> str | None:
    """Why peft type `name` cannot be a method here, or None."""
    return REFUSED.get(name)
