"""The data summary: what went into each split, how long the texts are, what was dropped,
and the confounds a reader must know (e.g. neutral examples come only from SST and tweets)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .build import DataBundle
from .sources import display_name as display

PERCENTILES = (50, 90, 95, 99)


def _length_stats(lengths: list[int], max_length: int | None = None) -> dict:
    if not lengths:
        return {}
    arr = np.asarray(lengths)
    out = {f"p{p}": float(np.percentile(arr, p)) for p in PERCENTILES}
    out.update(mean=round(float(arr.mean()), 1), max=int(arr.max()))
    if max_length:
        out["truncated_fraction"] = round(float((arr > max_length).mean()), 4)
    return out


def confounds(bundle: DataBundle) -> list[str]:
    notes = []
    if len(bundle.report["sources"]) < 2:  # one source (or no group column): nothing to confound with
        return notes
    for split, rows in (("train", bundle.train + bundle.validation), ("test", bundle.test)):
        for label, cname in enumerate(bundle.labels):
            by_source = Counter(e.source for e in rows if e.label == label)
            total = sum(by_source.values())
            if not total:
                continue
            # a held-out source is missing from training by design (it is the out-of-domain test)
            missing = [display(s) for s in bundle.report["sources"] if by_source[s] == 0
                       and not (split == "train" and s in bundle.holdout)]
            top, n = by_source.most_common(1)[0]
            if missing:
                notes.append(f"{split}: '{cname}' has no {', '.join(missing)} examples "
                             f"(from {', '.join(display(s) for s in sorted(by_source))} only)")
            if n / total > 0.6:
                notes.append(f"{split}: {n / total:.0%} of '{cname}' examples are {display(top)}: "
                             "source and label are confounded")
    return notes


def data_summary(bundle: DataBundle, tokenizer=None, max_length: int | None = None, tokenizer_note: str = "") -> dict:
    counts: dict = {}
    chars: dict = {}
    tokens: dict = {}
    for split, rows in bundle.splits().items():
        counts[split] = {
            s: {c: sum(1 for e in rows if e.source == s and e.label == i) for i, c in enumerate(bundle.labels)}
            for s in bundle.report["sources"]
        }
        counts[split]["total"] = {c: sum(1 for e in rows if e.label == i) for i, c in enumerate(bundle.labels)}
        chars[split] = {s: _length_stats([len(e.text) for e in rows if e.source == s]) for s in bundle.report["sources"]}
        if tokenizer is not None:
            lengths = [len(ids) for ids in tokenizer([e.text for e in rows], truncation=False)["input_ids"]]
            tokens[split] = {
                s: _length_stats([n for n, e in zip(lengths, rows) if e.source == s], max_length)
                for s in bundle.report["sources"]
            }
    return {
        "labels": list(bundle.labels),
        "sizes": {split: len(rows) for split, rows in bundle.splits().items()},
        "counts": counts,
        "char_lengths": chars,
        "token_lengths": tokens or None,
        "token_lengths_note": tokenizer_note or None,
        "confounds": confounds(bundle),
        "fingerprint": bundle.fingerprint,
        **{k: v for k, v in bundle.report.items()},
    }


def format_summary(summary: dict) -> str:
    lines = []
    sources = summary["sources"]
    labels = summary["labels"]
    width = max(10, *(len(c) + 2 for c in labels))
    header = f"{'split':<11}{'source':<11}" + "".join(f"{c:>{width}}" for c in labels) + f"{'total':>9}"
    lines += ["Examples per split x source x label", header, "-" * len(header)]
    for split, by_source in summary["counts"].items():
        for s in [*sources, "total"]:
            row = by_source[s]
            name = display(s) if s != "total" else "all"
            lines.append(f"{split:<11}{name:<11}" + "".join(f"{row[c]:>{width}}" for c in labels)
                         + f"{sum(row.values()):>9}")
    for title, key in (("Text length in characters", "char_lengths"), ("Text length in tokens", "token_lengths")):
        table = summary.get(key)
        if not table:
            continue
        cols = [f"p{p}" for p in PERCENTILES] + ["max"] + (["trunc"] if key == "token_lengths" else [])
        lines += ["", title, f"{'split':<11}{'source':<11}" + "".join(f"{c:>8}" for c in cols)]
        for split, by_source in table.items():
            for s, st in by_source.items():
                vals = [st.get(f"p{p}") for p in PERCENTILES] + [st.get("max")]
                if key == "token_lengths":
                    vals.append(f"{st.get('truncated_fraction', 0):.1%}")
                lines.append(f"{split:<11}{display(s):<11}" + "".join(
                    f"{v:>8.0f}" if isinstance(v, (int, float)) else f"{'-' if v is None else v:>8}" for v in vals))
    if summary.get("token_lengths_note"):
        lines += ["", f"Token lengths: {summary['token_lengths_note']}"]
    lines += ["", "Dropped before sampling"]
    for s in sources:
        empty = sum(v["empty_dropped"] for v in summary["cleaning"][s].values())
        leak = summary["leakage"][s]
        dup = summary["duplicates"][s]
        where = ", ".join(f"{k} {v}" for k, v in leak["matched_in"].items()) or "none"
        lines.append(f"  {display(s):<10} empty after cleaning: {empty}; leaked into held-out "
                     f"splits (removed from train): {leak['train_rows_removed']} ({where}); duplicates: "
                     f"train {dup['train']}, test {dup['test']}")
    if summary.get("holdout"):
        held = summary["holdout"]
        removed = ", ".join(f"{display(s)} {n}" for s, n in held["train_rows_removed"].items()) or "none"
        lines.append(f"  held out of training and validation (tested as out-of-domain): "
                     f"{', '.join(display(s) for s in held['sources'])}; rows of other sources dropped as copies "
                     f"of its texts: {removed}")
    if summary.get("augmented"):
        lines.append(f"  augmented copies added to train: {summary['augmented']}")
    if summary["shortfalls"]:
        lines += ["", "Shortfalls"] + [f"  {m}" for m in summary["shortfalls"]]
    if summary["confounds"]:
        lines += ["", "Confounds to keep in mind"] + [f"  {m}" for m in summary["confounds"]]
    lines += ["", f"Mixing policy: {summary['source_mixing']}; data seed {summary['seed']}; "
              f"fingerprint {summary['fingerprint']}"]
    return "\n".join(lines)
