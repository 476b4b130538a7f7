"""Compare methods over several seeds, with paired runs, then report.

Run k of every method uses seed `config.experiment.seed + k`, the same data split and the same
batch order. Runs are interleaved (seed-major), so an interrupted comparison has
complete pairs, and finished runs are skipped when the command is repeated. The
statistics, plots and report are then built from the run files alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...analysis.report import build_report
from ...config import Config
from ...data.build import DataPools
from ...data.summary import data_summary
from ...errors import UserError
from ...evaluation.run_record import RunRecord
from ...layout import Layout
from ...metric_names import OVERALL_METRICS, keys_by_name
from ...analysis.gives_up import gives_up_records
from ...utils.distributed import is_main
from ...utils.io import write_json
from ...logging_setup import ensure_api_logging
from ..study.ownership import FolderGuard
from ..execution.command_progress import CommandProgress
from ..planning.plan import pilot_comparisons
from .preregistration import preregister
from ...tracking.lifecycle import tracked
from ..execution.executor import execute_runs
from .base_row import evaluate_base_model
from ..execution.preflight import check_data_fits, check_methods
from ..execution.context import RunContext, prepare_context
from ..study.study_plan import runs_per_method, study_plan

log = logging.getLogger(__name__)

TABLE_METRICS = OVERALL_METRICS


def format_table(comparison: dict) -> str:
    """Side-by-side table of the test metrics (mean ± std over seeds) for the terminal."""
    methods = list(comparison["methods"])
    columns = (["base"] if comparison.get("base") else []) + methods
    known = keys_by_name(comparison)
    keys = list(TABLE_METRICS) + [name for g in ("per_source", "domain")
                                  for name in comparison["metric_groups"].get(g, [])
                                  if name in known and known[name].metric == "macro_f1"]
    width = max(20, *(len(m) + 2 for m in columns))
    lines = [f"{'metric':<22}" + "".join(f"{m:>{width}}" for m in columns), "-" * (22 + width * len(columns))]
    for k in keys:
        cells = []
        for m in columns:
            if m == "base":
                cells.append(f"{comparison['base']['test'].get(k, float('nan')):>{width}.4f}")
                continue
            s = comparison["per_method"][m][k]
            if s["mean"] is None:  # every run of the method was excluded (e.g. collapsed): the report says why
                cells.append(f"{'-':>{width}}")
                continue
            txt = f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["std"] is not None else "")
            cells.append(f"{txt:>{width}}")
        lines.append(f"{k:<22}" + "".join(cells))
    eff = comparison["efficiency"]
    extra = [("trainable params", lambda e: f"{e['trainable_params']:,}"),
             ("train seconds", lambda e: f"{e['train_seconds']['mean']:.1f}"),
             ("peak RSS MB", lambda e: f"{e['peak_rss_mb']:.0f}"),
             ("RSS above baseline MB", lambda e: f"{e['peak_rss_above_baseline_mb']:.0f}"
              if e.get("peak_rss_above_baseline_mb") is not None else "-")]
    for label, fmt in extra:
        lines.append(f"{label:<22}" + ("" if not comparison.get("base") else f"{'-':>{width}}")
                     + "".join(f"{fmt(eff[m]):>{width}}" for m in methods))
    lines.append(f"{'runs':<22}" + ("" if not comparison.get("base") else f"{'-':>{width}}")
                 + "".join(f"{comparison['n_runs'][m]:>{width}}" for m in methods))
    return "\n".join(lines)


def tuned_context(ctx: RunContext, methods: list[str], overwrite: bool) -> RunContext:
    """`ctx` with each method's best settings from `tune_trials` Optuna trials of its own (run or resumed in
    the comparison's optimize/ folder, validation split only), over what the config set for it. The data, the
    tokenised splits and the trackers are the comparison's own: loaded once, for the trials and the runs."""
    from ..search.optimize import run_optimization

    config = ctx.config
    summaries = run_optimization(config, methods, n_trials=config.search.tune_trials, overwrite=overwrite, context=ctx)
    missing = [m for m in methods if not summaries[m]["best_params"]]
    if missing:
        raise UserError(f"no trial of {', '.join(missing)} completed in {config.search.tune_trials} tuning trial(s) "
                        "(see "
                        f"{Layout(ctx.output_dir).optimize}/<method>/summary.json): nothing to compare; raise "
                        "--tune-trials or fix the failures")
    overrides = {m: {**config.experiment.method_overrides.get(m, {}), **summaries[m]["best_params"]} for m in methods}
    for m in methods:
        log.info("%s: tuned with %d trials, best validation %s %.4f: %s", m, config.search.tune_trials,
                 config.search.hpo_metric,
                 summaries[m]["best_value"], summaries[m]["best_params"])
    tuned = config.replace(method_overrides={**config.experiment.method_overrides, **overrides})
    check_methods(tuned, ctx.provider, methods, ctx.precision)  # e.g. a tuned rank against the layers' width
    check_data_fits(tuned, ctx.data, methods)
    return replace(ctx, config=tuned)


class ComparisonExperiment:
    """The seed's API: `ComparisonExperiment(config, device).run_multiple_runs(config)`.

    Returns what the CLI writes to `comparison.json`, plus the per-run metrics under "runs".
    """

    def __init__(self, config: Config, device: str | None = None, output_dir: str | Path | None = None,
                 overwrite: bool = False, pools: DataPools | None = None, progress: CommandProgress | None = None):
        self.overwrite = overwrite
        self.pools = pools  # cleaned data pools already loaded (a sweep's earlier point)
        self.progress = progress  # a sweep's, over all its points
        ensure_api_logging()
        if device is not None:
            config = config.replace(device=device)
        self.config = config
        self.output_dir = Path(output_dir or config.experiment.output_dir)
        self.context: RunContext | None = None

    def run_multiple_runs(self, config: Config | None = None, methods: list[str] | None = None) -> dict:
        config = config or self.config
        if config.experiment.pilot:
            pilot_comparisons(Path(config.experiment.pilot))  # a pilot that cannot plan fails before anything runs
        with FolderGuard(config, self.output_dir, self.overwrite) as folder:
            return self._run(config, methods, folder)

    def _run(self, config: Config, methods: list[str] | None, folder: FolderGuard) -> dict:
        methods = methods or list(config.method.methods)
        ctx = prepare_context(config, methods=methods, pools=self.pools, folder=folder)
        plan = study_plan(config, self.output_dir, methods)  # after the claim: --overwrite has cleared the folder
        if is_main():
            write_json(Layout(self.output_dir).data_summary,
                       data_summary(ctx.data, ctx.tokenizer, ctx.tokenized.max_length))
            preregister(plan)  # before anything trains: the tuning trials included
        if config.search.tune_trials:  # tuned against tuned: each method's own study first, on the validation split
            ctx = tuned_context(ctx, methods, self.overwrite)
            plan = plan.with_config(ctx.config)
        self.context = ctx
        config = ctx.config
        hub = ctx.hub
        start = lambda: hub.start_parent(f"compare-{self.output_dir.resolve().name}", config,  # noqa: E731
                                         {"kind": "comparison", "methods": ",".join(methods)})
        with tracked(start, hub.end_parent) as outcome:
            if config.experiment.evaluate_base_model:
                evaluate_base_model(ctx)
            progress = self.progress or CommandProgress(runs_per_method([plan]))
            runs = execute_runs(ctx, plan, progress)
            if not is_main():
                return {"runs": [r.to_json() for r in runs]}  # rank 0 writes the report
            if config.experiment.serving:
                from .serving import measure_serving

                measure_serving(self.output_dir, methods, config.experiment.primary_metric)
            comparison = build_report(self.output_dir)
            hub.log_verdict({**{key: {"kind": c["primary"]["verdict"]["kind"], "diff_mean": c["primary"]["diff_mean"],
                                      "ci_low": c["primary"]["verdict"]["ci_low"],
                                      "ci_high": c["primary"]["verdict"]["ci_high"],
                                      "n_pairs": c["primary"]["n_pairs"], "text": c["primary"]["verdict"]["text"]}
                                for key, c in comparison["comparisons"].items()},
                             **gives_up_records(comparison.get("gives_up"))})
            if config.tracking.tracking_mlflow_register_model:
                self._register_best(config, comparison, runs)
            layout = Layout(self.output_dir)
            outcome.metrics = {f"{m}.{k}": v["mean"] for m, per in comparison["per_method"].items()
                               for k, v in per.items() if v["mean"] is not None}
            outcome.metrics.update({f"{m}.serving_{form}_{batch}_p50_ms": v["p50_ms"]
                                    for m, e in comparison["efficiency"].items()
                                    for form, latency in ((e.get("serving") or {}).get("latency") or {}).items()
                                    for batch, v in latency.items()})
            outcome.artifacts = [layout.report_html, layout.report_md, layout.comparison, layout.data_summary,
                                 layout.plots]
        return {**comparison, "runs": [r.to_json() for r in runs]}  # the API's result is JSON, as comparison.json

    def _register_best(self, config: Config, comparison: dict, runs: list[RunRecord]) -> None:
        # chosen on validation: picking by test score would make the registered model's test score optimistic
        def val(r: RunRecord) -> float:
            return (r.validation or {}).get("best_macro_f1") or 0.0

        best_method = max(comparison["methods"],
                          key=lambda m: float(np.mean([val(r) for r in runs if r.method == m])))
        best_run = max((r for r in runs if r.method == best_method), key=val)
        if not best_run.saved_model:
            log.warning("tracking_mlflow_register_model needs save_model: true; nothing registered")
            return
        self.context.hub.register_model(best_run.saved_model["path"], f"{best_method}-seed{best_run.seed}")
