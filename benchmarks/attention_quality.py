"""Does eager attention in CPU training cost quality? Paired runs against SDPA, the comparison's own statistics.

    python benchmarks/attention_quality.py [--seeds 5] [--methods lora,full] [--config configs/quickstart.yaml]

On CPU, training switches attention from SDPA to the eager formula while dropout is on
(`finetune_compare.models.attention`): its saved intermediates stay bf16 under autocast instead of SDPA's fp32
upcast. Each method is trained with both for the same seeds. Writes benchmarks/results/attention-quality.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from contextlib import contextmanager, nullcontext

from paired_quality import RESULTS, ROOT, Arm, rewrite, run_pairs


@contextmanager
def sdpa_in_training():
    """The runs keep the model's SDPA: the switch is replaced by one that reports and changes nothing."""
    import finetune_compare.experiments.execution.run as run

    original = run.use_training_attention
    run.use_training_attention = lambda model, device: model.config._attn_implementation
    try:
        yield
    finally:
        run.use_training_attention = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--output-dir", default=str(ROOT / "outputs" / "attention-quality"))
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--rewrite", action="store_true", help="rewrite the results files from the stored scores")
    args = parser.parse_args()
    new = Arm("eager attention", "eager", {}, nullcontext, "training_attention")
    old = Arm("SDPA attention", "sdpa", {}, sdpa_in_training, "training_attention")
    if args.rewrite:
        rewrite("Training attention on CPU: eager vs SDPA", "attention-quality", new, old, args.results_dir)
        return
    run_pairs("Training attention on CPU: eager vs SDPA", "attention-quality", new, old,
              args.methods.split(","), args.seeds, args.config, args.output_dir, args.results_dir)


if __name__ == "__main__":
    main()
