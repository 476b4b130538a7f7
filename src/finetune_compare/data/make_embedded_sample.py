"""Regenerate the embedded sample shipped in `data/embedded/` from a full local copy.

    python -m finetune_compare.data.make_embedded_sample --data-dir ../shared/data

Draws a seeded sample, stratified by native label, from every split of every source,
and writes it in the same `<name>/<split>.jsonl.gz` layout (gzip mtime 0, so the
same input gives the same bytes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..utils.io import write_jsonl_gz
from .loading import EMBEDDED_DIR, read_local
from .sources import SOURCES

# rows per native label, per split; sized so configs/quickstart.yaml's quotas fit
PER_LABEL = {
    "imdb": {"train": 400, "test": 200},
    "sst5": {"train": 160, "validation": 40, "test": 80},
    "tweeteval": {"train": 400, "validation": 100, "test": 200},
}
SEED = 20261126


def make_sample(data_dir: Path, out_dir: Path = EMBEDDED_DIR) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for name, splits in PER_LABEL.items():
        spec = SOURCES[name]
        for split, per_label in splits.items():
            rows = read_local(data_dir, spec, split)
            rng = np.random.default_rng([SEED, list(SOURCES).index(name), spec.splits.index(split)])
            picked = []
            for label in range(len(spec.native_labels)):
                idx = [i for i, r in enumerate(rows) if r.native_label == label]
                take = rng.choice(len(idx), size=min(per_label, len(idx)), replace=False)
                picked.extend(idx[j] for j in take)
            picked.sort()
            out = [
                {"text": rows[i].text, "label": rows[i].native_label, "label_text": spec.native_labels[rows[i].native_label]}
                for i in picked
            ]
            write_jsonl_gz(out_dir / spec.local_dir / f"{split}.jsonl.gz", out)
            counts.setdefault(name, {})[split] = len(out)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, type=Path, help="full local copy, e.g. ../shared/data")
    parser.add_argument("--out-dir", type=Path, default=EMBEDDED_DIR)
    args = parser.parse_args()
    for name, splits in make_sample(args.data_dir, args.out_dir).items():
        print(name, splits)


if __name__ == "__main__":
    main()
