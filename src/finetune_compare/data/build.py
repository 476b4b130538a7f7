"""The data pipeline: load -> map labels -> clean -> drop leakage -> balance -> split.

`build_data(config.data, seed)` returns a `DataBundle` of train / validation / test examples in
our 3-class scheme plus a report of everything that was dropped, short or mixed, so
the data summary can make confounds visible (e.g. IMDB has no neutral class).
The same config and seed always give identical sets.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .cleaning import clean_text, normalise
from .loading import load_split
from .sampling import allocate, augment_text, draw, stratified_split
from .files import load_own_data
from .sources import CLASS_NAMES, SOURCES

log = logging.getLogger(__name__)

# Separate random streams per purpose, so changing e.g. the test size does not
# change which training examples are drawn.
_STREAM_TRAIN, _STREAM_TEST, _STREAM_SPLIT, _STREAM_AUGMENT, _STREAM_ORDER = range(5)


@dataclass(frozen=True, slots=True)
class Example:
    id: str  # "<source>:<split>:<row>" (stable across builds)
    text: str
    label: int  # our class id
    source: str
    native_label: int
    cluster: str | None = None  # which test examples belong together (cluster_column); None: its own cluster


@dataclass
class DataBundle:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    report: dict = field(default_factory=dict)
    labels: tuple[str, ...] = CLASS_NAMES  # class names in id order: the preset's, or decided from your data
    holdout: tuple[str, ...] = ()  # sources (groups) in the test set only: scored apart as out-of-domain

    def splits(self) -> dict[str, list[Example]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @property
    def fingerprint(self) -> str:
        """Content hash: identifies the data for caches and resume checks."""
        h = hashlib.sha256()
        if self.labels != CLASS_NAMES:  # (the preset's fingerprints stay as they were)
            h.update(("\t".join(self.labels) + "\n").encode("utf-8"))
        for name, rows in self.splits().items():
            h.update(name.encode())
            for ex in rows:
                h.update(f"{ex.id}\t{ex.label}\t{ex.text}\n".encode("utf-8"))
        return h.hexdigest()[:16]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _load_clean(cfg: DataConfig, report: dict) -> dict[str, dict[str, list[Example]]]:
    """{source: {split: [Example]}} after label mapping and cleaning."""
    out: dict[str, dict[str, list[Example]]] = {}
    for name in cfg.sources:
        spec = SOURCES[name]
        out[name] = {}
        for split in spec.splits:
            raw = load_split(cfg.data_source, spec, split, cfg.data_dir)
            rows, empty = [], 0
            for i, r in enumerate(raw):
                text = clean_text(r.text, spec.kind, cfg.clean_text)
                if not text:
                    empty += 1
                    continue
                rows.append(Example(f"{name}:{split}:{i}", text, spec.to_class(r.native_label), name, r.native_label))
            if not rows:
                raise DataError(f"source '{name}' split '{split}': every text is empty after cleaning")
            out[name][split] = rows
            report["loaded"].setdefault(name, {})[split] = len(raw)
            report["cleaning"].setdefault(name, {})[split] = {"empty_dropped": empty}
    return out


def _load_own(cfg: DataConfig, report: dict) -> tuple[dict[str, dict[str, list[Example]]], tuple[str, ...]]:
    """Your own data as {group: {split: [Example]}} (every group has every split, maybe empty), and its labels."""
    own = load_own_data(cfg)
    ids = {name: i for i, name in enumerate(own.labels)}
    out: dict[str, dict[str, list[Example]]] = {}
    for split, rows in own.splits.items():
        loaded, empty = Counter(r.group for r in rows), Counter()
        for r in rows:
            text = clean_text(r.text, "plain", cfg.clean_text) if r.text is not None else ""
            if not text:
                empty[r.group] += 1
                continue
            group = out.setdefault(r.group, {s: [] for s in own.splits})
            group[split].append(Example(f"{split}:{r.row}", text, ids[r.label], r.group, ids[r.label], r.cluster))
        if empty:
            log.warning("%s: %d empty or missing texts dropped", own.where[split], sum(empty.values()))
        if sum(empty.values()) == len(rows):
            raise DataError(f"{own.where[split]}: every text is empty or missing (column '{cfg.text_column}')")
        for g, n in loaded.items():
            report["loaded"].setdefault(g, {})[split] = n
            report["cleaning"].setdefault(g, {})[split] = {"empty_dropped": empty[g]}
    for g in out.values():
        for split in own.splits:
            g.setdefault(split, [])
    return out, own.labels


def _deduplicate(rows: list[Example], seen: set[str]) -> tuple[list[Example], int]:
    """Rows whose normalised text is not in `seen` (which it extends), and how many were dropped."""
    kept = []
    for ex in rows:
        key = normalise(ex.text)
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(rows) - len(kept)


def _drop_leakage_and_duplicates(data: dict, report: dict) -> tuple[dict, dict]:
    """Training pools without texts seen in any held-out split; pools deduplicated."""
    heldout_keys: dict[str, set[str]] = {}
    for name, splits in data.items():
        for split, rows in splits.items():
            if split != "train":
                heldout_keys.setdefault(split, set()).update(normalise(e.text) for e in rows)
    train_pool: dict[str, list[Example]] = {}
    seen: set[str] = set()
    for name, splits in data.items():
        by_split = Counter()
        clean = []
        for ex in splits["train"]:
            hits = [s for s, keys in heldout_keys.items() if normalise(ex.text) in keys]
            by_split.update(hits)
            if not hits:
                clean.append(ex)
        train_pool[name], dup = _deduplicate(clean, seen)
        removed = len(splits["train"]) - len(clean)
        report["leakage"][name] = {"train_rows_removed": removed, "matched_in": dict(sorted(by_split.items()))}
        report["duplicates"][name] = {"train": dup}
    test_pool: dict[str, list[Example]] = {}
    seen_test: set[str] = set()
    for name, splits in data.items():
        test_pool[name], report["duplicates"][name]["test"] = _deduplicate(splits["test"], seen_test)
    return train_pool, test_pool


def _balanced_sample(
    pool: dict[str, list[Example]], per_class: int | None, cfg: DataConfig, rng: np.random.Generator, split: str,
    report: dict, upsample: bool, labels: tuple[str, ...],
) -> list[Example]:
    """`per_class` examples of each class, shared by the sources (groups) as `source_mixing` says; None: every
    example as it is (your own data's default), the class balance recorded."""
    if per_class is None:
        chosen = [e for s in sorted(pool) for e in pool[s]]
        report["allocation"][split] = {c: {s: sum(e.label == i for e in pool[s]) for s in sorted(pool)}
                                       for i, c in enumerate(labels)}
        return chosen
    chosen = []
    report["allocation"][split] = {}
    for label, cname in enumerate(labels):
        by_source = {s: [e for e in rows if e.label == label] for s, rows in pool.items()}
        available = {s: len(v) for s, v in by_source.items()}
        total = sum(available.values())
        if total == 0:
            raise DataError(f"{split}: no '{cname}' examples in sources {list(pool)}; add a source that has them")
        if total < per_class:
            what = "drawing duplicates to fill it (allow_upsampling)" if upsample else "using all of them"
            msg = f"{split}: asked for {per_class} '{cname}' examples but only {total} exist; {what}"
            log.warning(msg)
            report["shortfalls"].append(msg)
        if upsample and total < per_class:
            # shares as if pools were unlimited, drawn with replacement beyond each pool
            alloc = allocate(per_class, {s: (per_class if n else 0) for s, n in available.items()}, cfg.source_mixing)
        else:
            alloc = allocate(per_class, available, cfg.source_mixing)
        for s in sorted(by_source):
            chosen.extend(draw(rng, by_source[s], alloc[s], upsample=upsample))
        report["allocation"][split][cname] = {s: alloc[s] for s in sorted(alloc) if alloc[s]}
    return chosen


@dataclass
class DataPools:
    """Cleaned, leakage-free pools: loaded once, drawn from once per data seed."""
    train: dict[str, list[Example]]
    test: dict[str, list[Example]]
    report: dict
    labels: tuple[str, ...] = CLASS_NAMES
    validation: list[Example] | None = None  # your own validation file/split; None: split from the training draw
    # every text each source (group) holds, in any split, before deduplication, as text_key digests: what holding a
    # source out keeps from training (a text two sources share is deduplicated into one of them only)
    text_keys: dict[str, frozenset[bytes]] = field(default_factory=dict)


def text_key(text: str) -> bytes:
    """A text's leakage key (`normalise`, the rule between splits) as a short digest: the same in every process."""
    return hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=8).digest()


def _text_keys(data: dict[str, dict[str, list[Example]]]) -> dict[str, frozenset[bytes]]:
    return {name: frozenset(text_key(e.text) for rows in splits.values() for e in rows)
            for name, splits in data.items()}


def hold_out(pools: DataPools, held: list[str], report: dict) -> tuple[dict[str, list[Example]], list[Example] | None]:
    """The training pools (and your own validation rows) without the held-out sources, and without any text a
    held-out source holds in any split (case and whitespace aside, the rule between splits): out-of-domain scores
    are then about sources training never saw. A class only the held-out sources have is an error."""
    missing = [h for h in held if h not in pools.text_keys]
    if missing:
        raise DataError(f"holdout_sources: {', '.join(map(repr, missing))} is not a group of the data (groups: "
                        f"{', '.join(sorted(pools.text_keys))})")
    keys = frozenset().union(*(pools.text_keys[h] for h in held))
    removed: dict[str, int] = {}

    def keep(name: str, rows: list[Example]) -> list[Example]:
        kept = [e for e in rows if e.source not in held and text_key(e.text) not in keys]
        if name not in held and len(kept) < len(rows):
            removed[name] = removed.get(name, 0) + len(rows) - len(kept)
        return kept

    train = {name: keep(name, rows) for name, rows in pools.train.items() if name not in held}
    validation = None
    if pools.validation is not None:
        validation = [e for name in sorted({e.source for e in pools.validation})
                      for e in keep(name, [r for r in pools.validation if r.source == name])]
    for i, c in enumerate(pools.labels):
        if not any(e.label == i for rows in train.values() for e in rows) and any(
                e.label == i for h in held for e in pools.train.get(h, [])):
            raise DataError(f"holdout_sources: class '{c}' exists only in the held-out sources ({', '.join(held)}), "
                            "so training would never see it; hold out fewer sources, or train on a source that "
                            f"has '{c}' examples")
    report["holdout"] = {"sources": list(held), "train_rows_removed": removed}
    return train, validation


def load_pools(cfg: DataConfig) -> DataPools:
    report: dict = {
        "data_source": cfg.data_source, "sources": list(cfg.sources or []), "source_mixing": cfg.source_mixing,
        "clean_text": cfg.clean_text, "loaded": {}, "cleaning": {}, "leakage": {},
        "duplicates": {}, "allocation": {}, "shortfalls": [], "augmented": 0,
    }
    if not cfg.uses_own_data:
        data = _load_clean(cfg, report)
        train_pool, test_pool = _drop_leakage_and_duplicates(data, report)
        report["labels"] = list(CLASS_NAMES)
        return DataPools(train_pool, test_pool, report, text_keys=_text_keys(data))
    data, labels = _load_own(cfg, report)
    report.update(sources=sorted(data), labels=list(labels),
                  data_files={k: getattr(cfg, k) for k in ("train_file", "validation_file", "test_file")
                              if getattr(cfg, k)} if cfg.data_source == "files" else None,
                  dataset={"name": cfg.dataset_name, "config": cfg.dataset_config} if cfg.dataset_name else None)
    train_pool, test_pool = _drop_leakage_and_duplicates(data, report)
    validation = None
    if any(splits.get("validation") for splits in data.values()):
        validation = [e for g in sorted(data) for e in data[g]["validation"]]
    return DataPools(train_pool, test_pool, report, labels, validation, _text_keys(data))


def build_data(cfg: DataConfig, seed: int, data_seed: int | None = None, pools: DataPools | None = None
               ) -> DataBundle:
    """Training sample, validation split and test set. `data_seed` (default: `seed`, the experiment's) draws the
    training sample, the validation split, augmentation and order; the test set is always drawn with `seed`, so every
    pair of a comparison is scored on the same test set."""
    pools = pools or load_pools(cfg)
    test_seed, seed = seed, seed if data_seed is None else data_seed
    # pools may be shared by configs that differ in drawing keys (a sweep): record this config's
    report = {**copy.deepcopy(pools.report), "seed": test_seed, "source_mixing": cfg.source_mixing, "data_seed": seed,
              "allocation": {}, "shortfalls": []}
    held = tuple(cfg.holdout_sources or ())
    train_pool, own_validation = hold_out(pools, list(held), report) if held else (pools.train, pools.validation)
    sample = _balanced_sample(train_pool, cfg.samples_per_class, cfg, _rng(seed, _STREAM_TRAIN), "train", report,
                              cfg.allow_upsampling, pools.labels)
    test = _balanced_sample(pools.test, cfg.test_samples_per_class, cfg, _rng(test_seed, _STREAM_TEST), "test", report,
                            False, pools.labels)
    if own_validation is not None:
        train, validation = sample, list(own_validation)
    else:
        train, validation = stratified_split(
            _rng(seed, _STREAM_SPLIT), sample, [(e.label, e.source) for e in sample], cfg.val_fraction
        )
    check_validation_split(cfg, validation, pools.labels, given=own_validation is not None)
    check_test_split(cfg, test, pools.labels)
    if cfg.augment:
        rng = _rng(seed, _STREAM_AUGMENT)
        picks = [e for e in train if rng.random() < cfg.augment_fraction]
        extra = [Example(e.id + ":aug", augment_text(rng, e.text), e.label, e.source, e.native_label) for e in picks]
        train = train + extra
        report["augmented"] = len(extra)
    order = _rng(seed, _STREAM_ORDER)
    train = [train[i] for i in order.permutation(len(train))]
    return DataBundle(train=train, validation=validation, test=test, report=report, labels=pools.labels,
                      holdout=held)


MIN_VALIDATION_PER_CLASS = 2
MIN_VALIDATION_TOTAL = 20
# Both methods are scored on the test set: every class the models learn is tested (a per-class F1 and a macro
# average need it), and a handful of examples is the least a score and its bootstrap can be computed on.
MIN_TEST_PER_CLASS = 2
MIN_TEST_TOTAL = 10


def check_test_split(cfg: DataConfig, test: list[Example], labels: tuple[str, ...] = CLASS_NAMES) -> None:
    counts = {c: sum(e.label == i for e in test) for i, c in enumerate(labels)}
    short = [c for c, n in counts.items() if n < MIN_TEST_PER_CLASS]
    if short or len(test) < MIN_TEST_TOTAL:
        if cfg.uses_own_data and cfg.test_samples_per_class is None:
            fix = "add test examples of the short classes to the test file/split"
        else:
            fix = (f"raise test_samples_per_class (now {cfg.test_samples_per_class})" if cfg.test_samples_per_class
                   else "add test examples of the short classes")
        raise DataError(
            f"the test set is too small to score the methods on ({len(test)} examples; "
            f"{', '.join(f'{c}: {n}' for c, n in counts.items())}); it needs >= {MIN_TEST_PER_CLASS} per class and "
            f">= {MIN_TEST_TOTAL} in all: {fix}")


def check_validation_split(cfg: DataConfig, validation: list[Example], labels: tuple[str, ...] = CLASS_NAMES,
                           given: bool = False) -> None:
    """Early stopping and model selection need a validation set that can tell models apart (every class in it)."""
    counts = {c: sum(e.label == i for e in validation) for i, c in enumerate(labels)}
    short = [f"{c}: {n}" for c, n in counts.items() if n < MIN_VALIDATION_PER_CLASS]
    if short or len(validation) < MIN_VALIDATION_TOTAL:
        if given:
            fix = "add examples of the short classes to the validation file/split"
        else:
            fix = (f"raise samples_per_class (now {cfg.samples_per_class}) or " if cfg.samples_per_class else
                   "add training examples of the short classes, give a validation file/split, or raise ")
            fix += f"val_fraction (now {cfg.val_fraction})"
        raise DataError(
            f"the validation split is too small to select a model on ({len(validation)} examples; "
            f"{', '.join(f'{c}: {n}' for c, n in counts.items())}); it needs >= {MIN_VALIDATION_PER_CLASS} per class "
            f"and >= {MIN_VALIDATION_TOTAL} in all: {fix}"
        )
