"""A sweep: the paired comparison repeated at every point of a grid over one or two config keys.

`OUTPUT/points/<key>=<value>[,<key2>=<value2>]/` is an ordinary comparison folder (its own
runs, comparison.json and report), so a point resumes run by run and `report --results`
works on it too. The points share the loaded and cleaned data pools (the expensive part of
loading the complete datasets) and, through the tokenisation memo, every identical split;
the test set is drawn with `seed` alone, so every point is scored on the same examples.
The sweep report (`sweep_report.html|md`, `sweep.json`, `plots/sweep_*.png`) is rebuilt
from the point folders alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...analysis.sweep_report import build_sweep_report
from ...sweep_grid import point_name
from ...config import Config
from ...data.build import build_data, load_pools
from ...utils.distributed import is_main
from ..execution.command_progress import CommandProgress
from .compare import ComparisonExperiment
from ..study.ownership import FolderGuard, check_output_dir
from ..study.study_plan import runs_per_method, study_plan, sweep_points
from ...models.hf import build_model_provider
from ...training.device import resolve_device, resolve_precision
from ..execution.preflight import check_data_fits, check_methods
from ..execution.context import layer_shapes

log = logging.getLogger(__name__)


def run_sweep(config: Config, overwrite: bool = False) -> dict:
    """Run (or resume) every point's comparison, then write the sweep report. Returns sweep.json's content."""
    points = sweep_points(config)
    with FolderGuard(config, overwrite=overwrite) as folder:
        pools = load_pools(config.data)  # loaded and cleaned once for the whole sweep
        for _, point in points:  # a point that cannot run fails now, before any training, not hours later
            if not overwrite:
                check_output_dir(point, point.experiment.output_dir)
            check_data_fits(point, build_data(point.data, point.experiment.seed, pools=pools))
            provider = build_model_provider(point.model)
            precision = resolve_precision(point.training.mixed_precision, resolve_device(point.training.device),
                                          layer_shapes(provider, point), point.training.prefer_memory_over_speed)
            check_methods(point, provider, list(point.method.methods), precision)  # targets, ranks
        folder.claim()  # --overwrite clears points/ with the rest of our results
        return _run_points(points, pools, folder.out)


def _run_points(points: list[tuple[dict, Config]], pools, out: Path) -> dict:
    # the whole sweep's runs, counted (each point reads its runs' states when it starts)
    progress = CommandProgress(runs_per_method([study_plan(point, resumes=False) for _, point in points]))
    for i, (values, point) in enumerate(points, 1):
        log.info("sweep point %d/%d: %s", i, len(points), point_name(values))
        progress.label = f"point {i}/{len(points)}, "
        experiment = ComparisonExperiment(point, pools=pools, progress=progress)
        experiment.run_multiple_runs(point)
    if not is_main():
        return {}
    return build_sweep_report(out)
