"""Does storing LoRA's frozen base in bf16 cost quality? Paired runs, the comparison's own statistics.

    python benchmarks/bf16_base_quality.py [--seeds 5] [--config configs/quickstart.yaml]

LoRA is trained with `base_weights_dtype: fp32` and `bf16` for the same seeds; pair k shares its data
draw, batch order and initialisation, so the only difference is the base's storage.
Writes benchmarks/results/bf16-base-quality.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from contextlib import nullcontext

from paired_quality import RESULTS, ROOT, Arm, rewrite, run_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--output-dir", default=str(ROOT / "outputs" / "bf16-base-quality"))
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--rewrite", action="store_true", help="rewrite the results files from the stored scores")
    args = parser.parse_args()
    arms = [Arm(f"{dtype} base", dtype, {"base_weights_dtype": dtype}, nullcontext, "base_weights_dtype")
            for dtype in ("bf16", "fp32")]
    if args.rewrite:
        rewrite("LoRA: frozen base in bf16 vs fp32", "bf16-base-quality", *arms, args.results_dir)
        return
    run_pairs("LoRA: frozen base in bf16 vs fp32", "bf16-base-quality", *arms, ["lora"], args.seeds, args.config,
              args.output_dir, args.results_dir)


if __name__ == "__main__":
    main()
