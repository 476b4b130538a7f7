"""Tokenise a data build once (per tokenizer and max_length) and reuse it for every run.

Results are memoised in-process and cached on disk with `datasets.save_to_disk`, keyed
by the data fingerprint, the tokenizer and max_length, so a resumed comparison does not
tokenise again. Validation and test sets are ordered by length: evaluation then pads
almost nothing, and `examples` keeps the same order so predictions map back to texts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import logging
from dataclasses import dataclass
from pathlib import Path

import datasets

from .build import DataBundle, Example

log = logging.getLogger(__name__)

_MEMO: dict[str, "TokenizedData"] = {}


@dataclass
class TokenizedSplit:
    dataset: datasets.Dataset  # model inputs + labels only
    examples: list[Example]  # row i of `dataset` is examples[i]
    lengths: list[int]  # real (non-pad) tokens per row

    @property
    def num_tokens(self) -> int:
        return sum(self.lengths)


@dataclass
class TokenizedData:
    train: TokenizedSplit
    validation: TokenizedSplit
    test: TokenizedSplit
    max_length: int
    key: str


def _tokenizer_id(tokenizer) -> str:
    vocab = tokenizer.backend_tokenizer.to_str() if getattr(tokenizer, "is_fast", False) else str(tokenizer.get_vocab())
    return hashlib.sha256(f"{type(tokenizer).__name__}|{tokenizer.padding_side}|{vocab}".encode()).hexdigest()[:16]


def cache_key(bundle: DataBundle, tokenizer, max_length: int) -> str:
    return hashlib.sha256(f"{bundle.fingerprint}|{_tokenizer_id(tokenizer)}|{max_length}".encode()).hexdigest()[:20]


def _tokenize(examples: list[Example], tokenizer, max_length: int) -> datasets.Dataset:
    ds = datasets.Dataset.from_dict({"text": [e.text for e in examples], "labels": [e.label for e in examples]})
    return ds.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
        batched=True, batch_size=1000, remove_columns=["text"], desc=None,
    )


def tokenize_bundle(bundle: DataBundle, tokenizer, max_length: int, cache_dir: str | Path | None = None) -> TokenizedData:
    key = cache_key(bundle, tokenizer, max_length)
    if key in _MEMO:
        return _MEMO[key]
    split_examples = {"train": bundle.train, "validation": bundle.validation, "test": bundle.test}
    cached = Path(cache_dir) / f"tokenized-{key}" if cache_dir else None
    splits: dict[str, TokenizedSplit] = {}
    if cached is not None and (cached / "order.json").is_file():
        try:
            order = json.loads((cached / "order.json").read_text())
            for name, rows in split_examples.items():
                ds = datasets.load_from_disk(str(cached / name))
                examples = [rows[i] for i in order[name]]
                if len(examples) != len(ds):
                    raise ValueError(f"{name}: {len(ds)} rows for {len(examples)} examples")
                splits[name] = TokenizedSplit(ds, examples, [len(x) for x in ds["input_ids"]])
            log.info("loaded tokenised data from %s", cached)
        except Exception as exc:  # a damaged cache is only a cache: rebuild it
            log.warning("tokenised cache %s is unreadable (%s: %s); rebuilding it", cached, type(exc).__name__,
                        str(exc)[:120])
            shutil.rmtree(cached, ignore_errors=True)
            splits = {}
    if not splits:
        order: dict[str, list[int]] = {}
        for name, rows in split_examples.items():
            ds = _tokenize(rows, tokenizer, max_length)
            lengths = [len(x) for x in ds["input_ids"]]
            idx = list(range(len(rows)))
            if name != "train":  # length-sorted evaluation: near-zero padding
                idx.sort(key=lambda i: lengths[i])
                ds = ds.select(idx).flatten_indices()
                lengths = [lengths[i] for i in idx]
            order[name] = idx
            splits[name] = TokenizedSplit(ds, [rows[i] for i in idx], lengths)
        if cached is not None:
            tmp = cached.with_name(cached.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)  # left by a process killed while writing
            for name, split in splits.items():
                split.dataset.save_to_disk(str(tmp / name))
            (tmp / "order.json").write_text(json.dumps(order))
            if not cached.exists():
                tmp.rename(cached)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    data = TokenizedData(splits["train"], splits["validation"], splits["test"], max_length, key)
    _MEMO[key] = data
    return data
