"""One executor for the runs of a comparison: `local` trains them one after another in this process, `ray` as Ray
tasks side by side (experiments/execution/ray_executor.py). Both write the same run folders under the same rules
(metrics.json last, a complete run never redone), so a folder started on one backend resumes on the other, and the
statistics are built from the folders alone, whatever ran them.
"""

from __future__ import annotations

from ...evaluation.run_record import RunRecord
from ..study.study_plan import PairPlan, StudyPlan
from .command_progress import CommandProgress, score_text
from .context import RunContext, context_for_pair
from .run import run_method


def execute_runs(ctx: RunContext, plan: StudyPlan, progress: CommandProgress) -> list[RunRecord]:
    """Every run of the plan, complete on disk afterwards; returns their records (a run that failed on every attempt
    on Ray is left out: it is recorded in its folder's failure.json and in the report)."""
    methods, pairs = list(plan.methods), plan.pairs()
    if ctx.config.execution.execution_backend == "ray":
        from .ray_executor import run_on_ray  # Ray is an optional extra, imported only when asked for

        return run_on_ray(ctx, methods, pairs, progress)
    return run_locally(ctx, methods, pairs, progress)


def run_locally(ctx: RunContext, methods: list[str], pairs: list[PairPlan], progress: CommandProgress
                ) -> list[RunRecord]:
    runs = []
    for pair in pairs:  # seed-major: an interruption leaves complete pairs
        pair_ctx = context_for_pair(ctx, pair) if pair.to_train else ctx
        for method in methods:
            progress.start(method, pair.seed)
            record = run_method(pair_ctx, method, pair.seed)
            progress.finish(method, pair.seed, method in pair.to_train, score_text(pair_ctx.config, record))
            runs.append(record)
    return runs
