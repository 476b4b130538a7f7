"""The report: `report.md` and a self-contained `report.html` (images inlined, no network).

Both are rendered from one list of blocks, so they never disagree. Every input comes from
files in the results folder, so `--mode report --results DIR` rebuilds it without training.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..budgets import declared_budget
from ..data.sources import display_name
from ..labels import CLASS_NAMES
from ..layout import RUN_CONFIG, Layout
from ..metric_names import keys_by_name
from ..utils.io import atomic_write_text, write_json
from .run_files import read_json, read_searches
from .aggregate import build_comparison
from .error_analysis import error_analysis
from .fairness_checks import deciding_search, fairness_blocks, method_findings
from .exports import write_exports
from .gives_up_plot import forest_rows, gives_up_plot
from .pareto_plot import pareto_plot
from .plots import make_plots, method_colors
from .render import render_html, render_markdown
from .report_blocks import SECTIONS, Block
from .report_gives_up import gives_up_blocks
from .report_many import pareto_blocks, possibly_best_blocks, ranking_blocks
from .serving_cost import serving_sentences
from .report_tables import (data_table, efficiency_table, format_value, primary_blocks,
                            results_table, secondary_table)
from .result_types import ComparisonResult

log = logging.getLogger(__name__)


def build_blocks(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    """The report's blocks, section by section (each section's builder below)."""
    b: list[Block] = []
    for section, build in (("verdict", _verdict_section), ("setup", _setup_section), ("results", _results_section),
                           ("gives_up", _gives_up_section), ("statistics", _statistics_section),
                           ("efficiency", _efficiency_section),
                           ("search", _search_section), ("plots", _plots_section), ("errors", _errors_section),
                           ("reproduce", _reproduce_section)):
        blocks = build(output_dir, cmp, errors, plots)
        if blocks is not None:  # (a section that does not apply, such as held-out sources without any: left out)
            b.append(Block("h2", SECTIONS[section], section))
            b += blocks
    return b


def _gives_up_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block] | None:
    return gives_up_blocks(cmp, plots) if cmp.get("gives_up") else None


def _verdict_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    ref = cmp["reference"]
    for line in cmp.get("summary") or []:
        b.append(Block("p", line, caption="headline"))
    for lines in ((cmp.get("gives_up") or {}).get("lines") or {}).values():
        b += [Block("p", line) for line in lines]
    if cmp.get("gives_up") and "gives_up" in plots:
        b.append(Block("img", plots["gives_up"], caption="What each method gives up (forest plot; details under "
                                                         "'What each method gives up')"))
    pre = cmp.get("preregistration")
    if pre:
        declared = [f"primary metric {pre['primary_metric']}"]
        declared += [f"equivalence margin ±{pre['equivalence_margin']:g}"] if pre.get("equivalence_margin") else []
        declared += [f"effect of interest ±{pre['effect_of_interest']:g}"] if pre.get("effect_of_interest") else []
        budget = declared_budget(pre.get("budget"))
        declared += [f"a budget of {budget} for each method"] if budget else []
        declared += [f"{pre['tune_trials']} tuning trials for each method"] if pre.get("tune_trials") else []
        b.append(Block("list", [f"Declared before training ({pre['declared_at']}): {', '.join(declared)}; "
                                f"{pre['pairs_run']} pairs."]
                       + [f"Plan from the pilot {pre['pilot']}: {line.strip()}" for line in pre.get("plan", [])],
                       caption="Pre-registered"))
    if cmp.get("tuning"):
        trials = ", ".join(f"{m} {t['trials']}" + (f" + {t['trials_in_all'] - t['trials']} widened"
                                                    if t.get("trials_in_all") else "")
                           for m, t in cmp["tuning"].items())
        b.append(Block("p", f"Tuned against tuned: each method was tuned with its own Optuna study on the validation "
                            f"split only (trials: {trials}; spaces, best settings and how much tuning each needed in "
                            "'Hyperparameter search'), and the verdict compares each method's best settings over the "
                            "paired seeds on the test set."))
    for line in cmp["headline"] or [f"Only {', '.join(cmp['methods'])} ran: nothing to compare against {ref}."]:
        b.append(Block("p", line))
    reference_findings = method_findings(ref, (cmp.get("fairness") or {}).get(ref) or {})
    if len(cmp["comparisons"]) > 1 and reference_findings:  # shared by every verdict above, so said once
        b.append(Block("p", f"About the reference {ref}, for every verdict above: " + " ".join(reference_findings)))
    for f in cmp.get("failed_runs", []):
        b.append(Block("p", f"Missing: {f['method']} seed {f['seed']} failed on all {f['attempts']} attempt(s) "
                            f"({f['error']}), so its pair is not in any statistic; rerun the same command to train "
                            "only the missing runs."))
    for f in cmp.get("flagged_runs", []):
        b.append(Block("p", f"Warning: {f['method']} seed {f['seed']} " + "; ".join(f["problems"]) + "."))
    for f in cmp.get("not_learned", []):
        b.append(Block("p", f"Warning: {f['method']} seed {f['seed']} may not have learned: "
                            + "; ".join(f["problems"]) + "."))
    if cmp.get("collapsed_runs"):
        b.append(Block("p", f"{len(cmp['collapsed_runs'])} run(s) predicted one class for every test example and are "
                            "excluded from every statistic: " + ", ".join(f"{c['method']} seed {c['seed']}"
                                                                          for c in cmp["collapsed_runs"]) + "."))
    still = {m: e for m, e in cmp["efficiency"].items() if e.get("best_at_last_evaluation")}
    if still:
        b.append(Block("p", "Not converged: " + "; ".join(
            f"{m}: {e['best_at_last_evaluation']} of {e['runs']} run(s) scored best on validation at their last "
            "evaluation, so they were still improving when their budget ended" for m, e in still.items())
            + ". A longer budget for them might change the comparison ("
            + ("raise the declared budget: it is the same for every method)."
               if any(declared_budget(e.get("budget")) for e in cmp["efficiency"].values())
               else "raise num_epochs, or per method in method_overrides).")))
    unpaired = [x for x in cmp.get("excluded_runs", []) if x["reason"] != "collapsed"]
    if unpaired:
        b.append(Block("p", "Left out so that every table, plot and the verdict use the same pairs: "
                            + "; ".join(f"{x['method']} seed {x['seed']} ({x['reason']})" for x in unpaired) + "."))
    return b


def _setup_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    ref = cmp["reference"]
    env = cmp.get("environment", {})
    b.append(Block("list", [
        f"Model: {cmp['model_name']}",
        f"Methods: {', '.join(cmp['methods'])} (reference: {ref}); paired seeds: "
        + ", ".join(f"{m} {n}" for m, n in cmp["n_runs"].items()),
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
    ]))
    if cmp.get("base_is_classifier"):
        b.append(Block("p", f"Note: the base checkpoint {cmp['model_name']} is already a classifier for these labels "
                            "(see the 'base (untrained)' column). Both methods start from a model that solves the task "
                            "in part, so the comparison measures how well each adapts it further, not how well each "
                            "learns the task from a general encoder."))
    summary_path = Layout(output_dir).data_summary
    if summary_path.is_file():
        summary = read_json(summary_path)
        b.append(Block("table", data_table(summary), caption="Data composition (examples per split, source and class)"))
        if summary.get("confounds"):
            b.append(Block("list", summary["confounds"], caption="Confounds"))
    text = cmp.get("resolved_config") or resolved_config(output_dir)
    if text:
        b.append(Block("code", text, caption="Resolved configuration"))
    elif Layout(output_dir).config.is_file():
        # a copy without run folders whose comparison.json predates resolved_config (docs/results/quickstart): the
        # folder's config.yaml rather than no configuration at all, saying what it is
        b.append(Block("code", Layout(output_dir).config.read_text(encoding="utf-8"),
                       caption="Resolved configuration (the folder's config.yaml, written by the latest command "
                               "run on it; no run folder is left to read a run's own)"))
    return b


def resolved_config(output_dir: Path) -> str | None:
    """A run's whole resolved config (config.yaml of the first finished run), kept in comparison.json too, so a
    rebuild of a copy without run folders (docs/results) still shows it."""
    path = next((p.parent / RUN_CONFIG for p in Layout(output_dir).finished_runs()
                 if (p.parent / RUN_CONFIG).is_file()), None)
    return path.read_text(encoding="utf-8") if path else None


def _results_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    methods = sorted({s.get("ci_method") for per in cmp["per_method"].values() for s in per.values()} - {None})
    named = " or ".join({"t": "t-interval over the seeds"}.get(m, m) for m in methods) or "t-interval over the seeds"
    b.append(Block("p", "Test set, over the paired seeds the verdict uses. Cells: mean ± std over seeds [95% CI of "
                        f"the mean, {named}; cut at the metric's bounds 0 and 1, marked *, where it would reach past "
                        "them]; a single run shows its value only."))
    held = ", ".join(display_name(s) for s in cmp.get("held_out_sources") or [])
    for group, title in (("overall", "Overall"), ("per_class", "Per class (F1)"), ("per_source", "Per source"),
                         ("domain", f"In domain and out of domain (held out: {held})")):
        if cmp["metric_groups"].get(group):  # (no per-source table for a single source; no domain one unless held out)
            b.append(Block("table", results_table(cmp, cmp["metric_groups"][group]), caption=title))
    return b


def _statistics_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    ref = cmp["reference"]
    if not cmp["comparisons"]:
        b.append(Block("p", f"No comparison: the reference method '{ref}' has no runs."))
    elif cmp["too_few_runs"]:
        b.append(Block("p", "Too few paired runs for statistics (need >= 3 per method): only the verdict line above."))
    else:
        b.append(Block("p", f"Declared primary metric: {cmp['primary_metric']}; it alone decides the verdict. The "
                            "other metrics get paired t-tests with Holm-adjusted p-values and make no claims of "
                            "their own."))
        keys = [k for g in cmp["metric_groups"].values() for k in g]
        if len(cmp["comparisons"]) > 1:
            b += ranking_blocks(cmp)
            b += possibly_best_blocks(cmp)
        for key, c in cmp["comparisons"].items():
            b += primary_blocks(c, output_dir)
            b.append(Block("table", secondary_table(c, keys, keys_by_name(cmp, CLASS_NAMES)),
                           caption=f"Other metrics, {key.replace('_vs_', ' vs ')}"))
    return b


def _efficiency_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    b.append(Block("table", efficiency_table(cmp)))
    sentences = serving_sentences(cmp)
    if sentences:
        b.append(Block("p", " ".join(sentences)))
    b += pareto_blocks(cmp)
    return b


def _search_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    b += _search_blocks(output_dir)
    b += fairness_blocks(cmp.get("fairness"))
    return b


def _plots_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    captions = {
        "metric_comparison": "Test metrics: means with 95% t-intervals over seeds (no bars for a single run); "
                             "right: paired differences per seed with the verdict's interval", "learning_curves": "Learning curves",
        "confusion_matrices": "Confusion matrices", "efficiency": "Quality vs cost",
        "errors": "Errors and disagreements per source",
    }
    for name, path in plots.items():
        if name == "gives_up":  # shown in the verdict box and at the top of its own section already
            continue
        b.append(Block("img", path, caption=captions.get(name, name)))
    return b


def _errors_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    if not errors:
        b.append(Block("p", "No seed shared by every method: nothing to analyse."))
    else:
        b.append(Block("p", f"Predictions of seed {errors['seed']}."))
        for m, by_source in errors["most_confident_errors"].items():
            rows = [["source", "text", "true", "predicted", "confidence"]]
            for s, items in by_source.items():
                rows += [[display_name(s), _short(e["text"]), e["label"], e["predicted"],
                          f"{e['confidence']:.3f}"] for e in items]
            b.append(Block("table", rows, caption=f"{m}: most confidently wrong test examples per source"))
        if errors.get("disagreements") is not None:
            a, bb = errors["pair"]
            rows = [["source", "text", "true", a, bb]]
            rows += [[display_name(d["source"]), _short(d["text"]), d["label"],
                      f"{d[a]} ({d[a + '_confidence']:.2f})", f"{d[bb]} ({d[bb + '_confidence']:.2f})"]
                     for d in errors["disagreements"]]
            b.append(Block("table", rows, caption=f"{a} and {bb} disagree on {errors['n_disagreements']} test examples; "
                                                  "the most confident ones"))
    return b


def _reproduce_section(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    b.append(Block("p", "These commands rebuild these results: the first retrains (it resumes, skipping finished "
                        "runs, in the same folder; use another --output-dir to retrain from scratch), the second "
                        "rebuilds this report from the files."))
    b.append(Block("code", reproduce_commands(output_dir, cmp)))
    return b


def reproduce_commands(output_dir: Path, cmp: dict) -> str:
    """The exact commands: OUTPUT_DIR/config.yaml is the whole resolved config of the command that ran."""
    lines = []
    if Layout(output_dir).config.is_file():
        lines.append(f"finetune-compare compare --config {Layout(output_dir).config} --output-dir {output_dir}")
    lines.append(f"finetune-compare report --results {output_dir}")
    return "\n".join(lines)


def _search_blocks(output_dir: Path) -> list[Block]:
    pairs = list(read_searches(output_dir).values())  # each method's search, then its widened one
    summaries = [first for first, _ in pairs]
    later = [widened for _, widened in pairs if widened is not None]
    if not summaries:
        return [Block("p", "No search in this folder: the runs used the configured hyperparameters "
                           "(finetune-compare optimize, or compare --tune-trials N, tunes them).")]
    rows = [["method", "trials", "complete / pruned / failed", "best validation value", "best parameters",
             "steps saved by pruning", "expected best after n trials (± SD)"]]
    for s in (search for pair in pairs for search in pair if search is not None):
        st = s["states"]
        expected = (s.get("expected_validation") or {}).get("at") or []
        rows.append([s["method"] + (" (widened at its edges)" if s.get("search") else ""), str(s["trials"]),
                     f"{st.get('COMPLETE', 0)} / {st.get('PRUNED', 0)} / {st.get('FAIL', 0)}",
                     format_value(s["best_value"]), ", ".join(f"{k}={v}" for k, v in (s["best_params"] or {}).items()) or "–",
                     f"{s['pruning']['saved_fraction']:.1%}",
                     "; ".join(f"{p['n']}: {p['mean']:.4f} ± {p['sd']:.4f}" for p in expected) or "–"])
    blocks = [Block("table", rows, caption="Optuna studies (validation set only)")]
    curve = Layout(output_dir).expected_validation_plot
    if curve.is_file():
        blocks.append(Block("img", curve, caption="Expected validation performance: the expected best validation "
                                                  "score of n trials, per method (Dodge et al. 2019)"))
    for s in summaries + later:
        for name in s.get("plots", []):
            path = Layout(output_dir).study_dir(s["method"], s.get("search")) / name  # a file summary.json lists
            if path.is_file():
                label = s["method"] + (" (widened search)" if s.get("search") else "")
                blocks.append(Block("img", path, caption=f"{label}: {name[:-4].replace('_', ' ')}"))
    return blocks


def tuning_summary(output_dir: Path) -> dict | None:
    """Each method's study in this folder (tuned against tuned): trials, space, best settings and value, and how
    much tuning it needed (the expected best validation score at 1, 5, 10 and N trials)."""
    def entry(s: dict) -> dict:
        return {"trials": s["trials"], "states": s["states"], "metric": s.get("metric"), "best_value": s["best_value"],
                "best_params": s["best_params"], "search_space": s["search_space"],
                "expected_validation": (s.get("expected_validation") or {}).get("at")}

    out = {}
    for method, (s, later) in read_searches(output_dir).items():
        out[method] = entry(s)
        if later is not None:  # tune_extend: the better of the two searches decided; both are recorded
            decided = deciding_search(s, later)
            out[method] = {**entry(decided), "searches": {"first": entry(s), "widened": entry(later)},
                                "decided_by": "widened" if decided is later else "first",
                                "trials_in_all": s["trials"] + later["trials"], "widened": s.get("widened") or []}
    return out or None


def _short(text: str, n: int = 220) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(output_dir: str | Path) -> ComparisonResult:
    """Aggregate runs on disk, write comparison.json, plots/, report.md and report.html."""
    output_dir = Path(output_dir)
    log.info("statistics, plots and report for %s (test-set bootstrap and ASO take a few seconds)", output_dir)
    cmp = build_comparison(output_dir)
    tuning = tuning_summary(output_dir)
    if tuning:
        cmp["tuning"] = tuning
    config_text = resolved_config(output_dir)
    if config_text:
        cmp["resolved_config"] = config_text
    if Layout(output_dir).preregistration.is_file():
        cmp["preregistration"] = read_json(Layout(output_dir).preregistration)
    failed = [read_json(p) for p in Layout(output_dir).failed_runs()]  # the Ray executor's, after every retry
    if failed:
        cmp["failed_runs"] = [{k: f.get(k) for k in ("method", "seed", "error", "attempts")} for f in failed]
    errors = error_analysis(output_dir, cmp["methods"])
    cmp["error_analysis"] = errors
    plots = make_plots(output_dir, cmp, errors)
    if cmp.get("gives_up") and forest_rows(cmp):  # the forest plot of what each method gives up (when compared)
        plots["gives_up"] = gives_up_plot(cmp, method_colors(cmp["methods"]), Layout(output_dir).plot("gives_up"))
    if cmp.get("pareto"):  # three or more methods
        plots["pareto"] = pareto_plot(cmp, method_colors(cmp["methods"]), Layout(output_dir).plot("pareto"))
    cmp["plots"] = {k: str(v.relative_to(output_dir)) for k, v in plots.items()}
    layout = Layout(output_dir)
    write_json(layout.comparison, cmp)
    write_exports(output_dir, cmp)
    blocks = build_blocks(output_dir, cmp, errors, plots)
    atomic_write_text(layout.report_md, render_markdown(blocks, output_dir))
    atomic_write_text(layout.report_html, render_html(blocks))
    log.info("report: %s", layout.report_html)
    return cmp
