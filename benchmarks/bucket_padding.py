"""The share of pad tokens a run's training batches carry with `pad_buckets` N (N fixed lengths) against dynamic
padding (N = 0: each batch padded to its longest text), on the data a config builds; no training.

    python benchmarks/bucket_padding.py [--config configs/quickstart.yaml ...] [--out benchmarks/results/bucket-padding.json]

Measured over the first epoch's length-grouped batches of the run with the config's seed (the batches the buckets
are fitted to) and, as a check that the fit carries over, over the second epoch's batches, which it never saw.
Also: random batches (batch_grouping: random) with dynamic padding, for scale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUCKETS = (0, 2, 4, 8, 16)
BATCH_SIZES = (16, 32, 128)


def measure(config_path: str) -> dict:
    import torch

    from finetune_compare.config import load_config
    from finetune_compare.experiments.execution.context import build_context
    from finetune_compare.training.buckets import bucket_for, run_buckets
    from finetune_compare.training.sampler import LengthGroupedShuffledSampler, padding_fraction

    config = load_config([config_path], [], output_dir="/nonexistent/bucket-padding")
    ctx = build_context(config, Path(config.output_dir))  # writes nothing
    tok = ctx.tokenized
    lengths, others = tok.train.lengths, [*tok.validation.lengths, *tok.test.lengths]
    rows = []
    for batch_size in BATCH_SIZES:
        sampler = LengthGroupedShuffledSampler(lengths, batch_size, config.seed)
        epochs = []
        for e in (0, 1):
            sampler.set_epoch(e)
            epochs.append(sampler.batches())
        perm = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(config.seed)).tolist()
        random_batches = [perm[k:k + batch_size] for k in range(0, len(perm), batch_size)]
        row = {"batch_size": batch_size, "random_batches_dynamic": round(padding_fraction(lengths, random_batches), 4)}
        for n in BUCKETS:
            buckets = run_buckets(lengths, others, batch_size, config.seed, n) if n else None
            pad_to = (lambda m, b=buckets: bucket_for(m, b)) if buckets else None
            row[f"buckets_{n}"] = {"lengths": buckets,
                                   "epoch_1": round(padding_fraction(lengths, epochs[0], pad_to), 4),
                                   "epoch_2": round(padding_fraction(lengths, epochs[1], pad_to), 4)}
        rows.append(row)
    return {"config": config_path, "train_examples": len(lengths), "max_length": tok.max_length, "rows": rows}


def markdown(results: list[dict]) -> str:
    lines = ["# Pad tokens with pad_buckets N (first epoch / second epoch, length-grouped batches)", ""]
    for r in results:
        lines += [f"## {r['config']} ({r['train_examples']:,} training examples, max length {r['max_length']})", "",
                  "| batch | random batches | dynamic (N=0) | " + " | ".join(f"N={n}" for n in BUCKETS[1:]) + " |",
                  "|---|---|---|" + "---|" * (len(BUCKETS) - 1)]
        for row in r["rows"]:
            cells = [f"{row[f'buckets_{n}']['epoch_1']:.1%} / {row[f'buckets_{n}']['epoch_2']:.1%}" for n in BUCKETS]
            lines.append(f"| {row['batch_size']} | {row['random_batches_dynamic']:.1%} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "bucket-padding.json")
    args = parser.parse_args()
    results = [measure(c) for c in (args.config or ["configs/quickstart.yaml", "configs/study-tuned.yaml"])]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
