"""Does storing LoRA's frozen base in bf16 cost quality? Paired runs, the comparison's own statistics.

    python benchmarks/bf16_base_quality.py [--seeds 5] [--config configs/quickstart.yaml]

LoRA is trained with `base_weights_dtype: fp32` and `bf16` for the same seeds; pair k shares its data
draw, batch order and initialisation, so the only difference is the base's storage. The verdict uses
`analysis.statistics` exactly as `compare` does (paired t-test, interval over seed and test-set noise,
TOST against a ±0.01 margin). Writes benchmarks/results/bf16-base-quality.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--output-dir", default=str(ROOT / "outputs" / "bf16-base-quality"))
    args = parser.parse_args()

    from finetune_compare.analysis.statistics import bootstrap_test_set, decide, paired
    from finetune_compare.config import load_config
    from finetune_compare.experiments.run import context_for_pair, prepare_context, run_dir_for, run_method
    from finetune_compare.utils.io import read_jsonl
    from finetune_compare.utils.logging import setup_logging

    setup_logging("INFO")
    base = load_config(args.config).replace(tracking_mlflow=False, tracking_wandb=False, methods=["lora"])
    scores: dict[str, dict[int, float]] = {"bf16": {}, "fp32": {}}
    preds: dict[str, dict[int, np.ndarray]] = {"bf16": {}, "fp32": {}}
    seconds: dict[str, list[float]] = {"bf16": [], "fp32": []}
    y = strata = None
    for dtype in ("fp32", "bf16"):
        cfg = base.replace(base_weights_dtype=dtype, output_dir=f"{args.output_dir}/{dtype}")
        ctx = prepare_context(cfg, methods=["lora"])
        for k in range(args.seeds):
            seed = cfg.seed + k
            start = time.perf_counter()
            metrics = run_method(context_for_pair(ctx, k), "lora", seed)
            seconds[dtype].append(metrics["timing"]["train_seconds"])
            assert metrics["params"]["base_weights_dtype"] == dtype
            scores[dtype][seed] = metrics["test"]["macro_f1"]
            rows = sorted(read_jsonl(run_dir_for(Path(cfg.output_dir), "lora", seed) / "predictions.jsonl"),
                          key=lambda r: r["id"])
            preds[dtype][seed] = np.array([r["predicted"] for r in rows])
            y = np.array([r["label"] for r in rows])
            strata = [f"{r['source']}|{r['label']}" for r in rows]
            print(f"{dtype} seed {seed}: macro-F1 {scores[dtype][seed]:.4f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    p = paired(scores["bf16"], scores["fp32"])
    tl = bootstrap_test_set(y, preds["bf16"], preds["fp32"], strata, "macro_f1")
    verdict = decide("bf16 base", "fp32 base", "macro_f1", p, tl["se_test"], 0.01)
    result = {"config": args.config, "seeds": p["seeds"], "macro_f1": scores, "paired": p, "test_level": tl,
              "verdict": verdict, "train_seconds_mean": {k: float(np.mean(v)) for k, v in seconds.items()}}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bf16-base-quality.json").write_text(json.dumps(result, indent=2, default=float))
    lines = ["# LoRA: frozen base in bf16 vs fp32 (paired seeds)", "",
             f"Config: `{Path(args.config).name}`, seeds {p['seeds'][0]}..{p['seeds'][-1]}; each pair shares data draw, "
             "batch order and initialisation.", "",
             "| seed | fp32 base macro-F1 | bf16 base macro-F1 | difference |", "|---:|---:|---:|---:|"]
    for s, d in zip(p["seeds"], p["diffs"]):
        lines.append(f"| {s} | {scores['fp32'][s]:.4f} | {scores['bf16'][s]:.4f} | {d:+.4f} |")
    lines += ["", f"Verdict: {verdict['text']}", "",
              f"Mean training time: fp32 base {result['train_seconds_mean']['fp32']:.1f} s, bf16 base "
              f"{result['train_seconds_mean']['bf16']:.1f} s."]
    (out / "bf16-base-quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
