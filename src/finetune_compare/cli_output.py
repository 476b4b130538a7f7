"""What the CLI prints: the first line of a command, and the final tables and verdicts of compare and sweep
(parsing stays in cli.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .layout import Layout

if TYPE_CHECKING:  # the types only: printing must not import analysis (and torch) before it is needed
    from .analysis.result_types import ComparisonResult, SweepSummary

log = logging.getLogger("finetune_compare")


def announce(mode: str, config) -> None:
    """The first line, within a second or two: what will run and where (loading the libraries takes ~6 s more)."""
    if mode == "config":
        return
    if mode in ("compare", "sweep"):
        from .experiments.study.study_plan import seeds_text, study_plan, sweep_points  # light: no torch

        configs = [point for _, point in sweep_points(config)] if mode == "sweep" else [config]
        plans = [study_plan(c, resumes=False) for c in configs]  # counts only: no run folder read at start-up
        what = (f"{', '.join(config.method.methods)} x {seeds_text(plans)} paired seeds"
                + (f" x {len(plans)} points" if mode == "sweep" else "")
                + f" = {sum(len(p.runs) for p in plans)} runs")
    elif mode == "optimize":
        what = f"Optuna search for {', '.join(config.method.methods)}"
    elif mode == "plan":
        what = f"the cost of {'sweep' if config.experiment.sweep else 'compare'} (nothing is written)"
    elif mode == "data":
        what = "the data splits and their summary"
    else:
        what = f"one {config.single_method} run, seed {config.experiment.seed}"
    log.info("%s: %s into %s (loading the libraries...)", mode, what, config.experiment.output_dir)

def print_sweep(summary: "SweepSummary", output_dir: Path) -> None:
    from .analysis.sweep_report import verdict_label
    from .sweep_grid import point_label

    metric = summary["primary_metric"]
    for name in summary["comparisons"]:
        print(f"\n{name.replace('_vs_', ' vs ')}: paired difference in {metric} per point (95% CI)\n")
        for p in summary["points"]:
            c = p["comparisons"].get(name)
            if c:
                ci = f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c["ci_low"] is not None else "(no interval)"
                print(f"  {point_label(p['values']):<34}{c['diff_mean']:+.4f} {ci:<20}  "
                      f"{verdict_label(c, summary['equivalence_margin'])}")
    print("\nAnswer")
    for line in summary["answer"]:
        print(f"  {line}")
    if summary["missing_points"]:
        print(f"  not run yet: {', '.join(summary['missing_points'])}")
    print(f"\nsweep report: {Layout(output_dir).sweep_report_html}  (also sweep_report.md, sweep.json, plots/; "
          "each point's own report under points/)")

def print_comparison(result: "ComparisonResult", output_dir: Path) -> None:
    from .experiments.commands.compare import format_table

    print("\nTest set, mean over seeds (± std when there are several)\n")
    print(format_table(result))
    print("\nVerdict")
    for line in result.get("summary") or []:
        print(f"  {line}")
    for lines in ((result.get("gives_up") or {}).get("lines") or {}).values():  # with held-out sources
        for line in lines:
            print(f"  {line}")
    for line in result["headline"] or ["only one method ran; nothing to compare"]:
        print(f"  {line}")
    print(f"\nreport: {Layout(output_dir).report_html}  (also report.md, comparison.json, plots/)")
    for line in _tracker_hints(output_dir):
        print(line)

def _tracker_hints(output_dir: Path) -> list[str]:
    """How to open what the trackers wrote locally (nothing for a remote MLflow server or online W&B)."""
    lines = []
    db = Layout(output_dir).mlflow / "mlflow.db"
    if db.is_file():
        lines.append(f"MLflow:  mlflow ui --backend-store-uri sqlite:///{db.resolve()}")
    if any(Layout(output_dir).wandb.glob("offline-run-*")):
        lines.append(f"W&B:     wandb sync {Layout(output_dir).wandb}/offline-run-*   (uploads the offline runs)")
    return lines


def print_optimization(summaries: dict[str, dict], metric: str) -> None:
    """Each study's trials, best value and settings, failures, and how much tuning each method needed."""
    from .analysis.tuning_curves import curve_text

    print(f"\n{'method':<8}{'trials':>8}{'complete':>10}{'pruned':>8}{'failed':>8}{'best ' + metric:>16}"
          f"{'steps saved by pruning':>26}")
    for method, s in summaries.items():
        st = s["states"]
        best = f"{s['best_value']:.4f}" if s["best_value"] is not None else "-"
        print(f"{method:<8}{s['trials']:>8}{st.get('COMPLETE', 0):>10}{st.get('PRUNED', 0):>8}{st.get('FAIL', 0):>8}"
              f"{best:>16}{s['pruning']['saved_fraction']:>26.1%}")
        if s["best_params"]:
            print(f"  best: {s['best_params']}")
        for f in s["failures"][:5]:
            print(f"  trial {f['number']} failed: {f['reason']}")
        if st.get("INTERRUPTED"):
            print(f"  {st['INTERRUPTED']} interrupted trial(s) (Ctrl-C, kill): not counted; rerun to complete the study")
    print("\nHow much tuning each method needed (expected best validation score of n trials, Dodge et al. 2019):")
    for method, s in summaries.items():
        print(f"  {curve_text(method, metric, s['expected_validation'])}")
    plot = next((s["expected_validation_plot"] for s in summaries.values() if s.get("expected_validation_plot")), None)
    if plot:
        print(f"  plot: {plot}")


def print_plan(plan: dict, json_path: str | None = None) -> None:
    """`plan --config`: the plan's text, and with --json the same plan as data."""
    from .experiments.planning.cost_plan import plan_json
    from .experiments.planning.plan_text import plan_text
    from .utils.io import write_json

    print(plan_text(plan))
    if json_path:
        write_json(Path(json_path), plan_json(plan))
        print(f"written: {json_path}")
