"""The report: `report.md` and a self-contained `report.html` (images inlined, no network).

Both are rendered from one list of blocks, so they never disagree. Every input comes from
files in the results folder, so `--mode report --results DIR` rebuilds it without training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..data.sources import display_name
from ..labels import CLASS_NAMES
from ..layout import RUN_CONFIG, Layout
from ..utils.io import atomic_write_text, write_json
from .run_files import read_json
from .aggregate import build_comparison, split_source_key
from .error_analysis import error_analysis
from .exports import write_exports
from .plots import make_plots
from .render import render_html, render_markdown
from .report_blocks import SECTIONS, Block

log = logging.getLogger(__name__)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _mean_ci(s: dict) -> str:
    if s["mean"] is None:
        return "–"
    txt = f"{s['mean']:.4f}"
    if s["std"] is not None:
        txt += f" ± {s['std']:.4f}"
    if s["ci_low"] is not None:
        txt += f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]" + ("*" if s.get("ci_clipped") else "")
    return txt


def _label(key: str) -> str:
    """A metric key as a table shows it: 'macro_f1_sst5' -> 'macro f1 (SST-5)'; a group of your data likewise."""
    per_source = split_source_key(key)
    if per_source:
        return f"{per_source[0].replace('_', ' ')} ({display_name(per_source[1])})"
    return key.replace("_", " ")


def _results_table(cmp: dict, keys: list[str]) -> list[list[str]]:
    header = ["metric"] + (["base (untrained)"] if cmp.get("base") else []) + cmp["methods"]
    rows = [header]
    for k in keys:
        row = [_label(k)]
        if cmp.get("base"):
            row.append(_fmt(cmp["base"]["test"].get(k)))
        row += [_mean_ci(cmp["per_method"][m][k]) for m in cmp["methods"]]
        rows.append(row)
    return rows


def _ci(low, high) -> str:
    return f"[{low:+.4f}, {high:+.4f}]" if low is not None else "–"


def _primary_blocks(c: dict, output_dir: Path) -> list[Block]:
    """The primary metric: per-seed differences, test-level evidence, intervals, tests, what could be detected."""
    p, v, tl, a_name, b_name = c["primary"], c["primary"]["verdict"], c["primary"]["test_level"], c["a"], c["b"]
    metric = c["primary_metric"]
    blocks = [Block("p", v["text"])]
    rows = [["seed", f"{a_name} - {b_name}", "test-set 95% CI (paired bootstrap)", "test-set SE",
             "McNemar exact p (these two trained models)"]]
    per_seed = {s["seed"]: s for s in (tl or {}).get("per_seed", [])}
    for seed, d in zip(p["seeds"], p["diffs"]):
        s = per_seed.get(seed)
        rows.append([str(seed), f"{d:+.4f}", _ci(s["ci_low"], s["ci_high"]) if s else "–",
                     _fmt(s["se"]) if s else "–", _fmt(s["mcnemar_p"], 3) if s else "–"])
    blocks.append(Block("table", rows, caption=f"{metric}, {a_name} minus {b_name}, per paired seed. The per-seed "
                                               "interval and McNemar's test compare the two models trained with that "
                                               "seed on this test set, not the two methods: seed noise is not in them"))
    sd = p["diff_sd"]
    shared = v.get("shared_test_variance")
    summary = [
        f"Mean paired difference {p['diff_mean']:+.4f} over {p['n_pairs']} pairs; SD of the differences "
        f"{_fmt(sd)} (seed, data-draw and each pair's own test-set noise).",
        f"Test-set sampling: SE of the mean {_fmt(v['se_test'])} (bootstrap, models fixed); the part shared by all "
        f"pairs through the one test set, c = {_fmt(shared, 7)} (c = (n² SE_test² − Σ se_k²) / (n(n−1)), floored at "
        "0), is the only test-set term added to the spread, which already holds each pair's own."
        if tl else "No predictions found: the interval covers seed and data-draw noise only.",
        f"Interval used for the verdict: mean ± t(0.975, {p['n_pairs'] - 1}) × sqrt(SD²/n + c) = "
        f"{_ci(v['ci_low'], v['ci_high'])}; the paired t-interval (c left out) is "
        f"{_ci(p['t_ci_low'], p['t_ci_high'])}, paired t-test p = {_fmt(p['t_p'], 3)}.",
    ]
    if tl:
        summary.append(f"Two-level bootstrap (resample seeds, then test examples; {tl['n_resamples']} resamples): "
                       f"{_ci(tl['two_level_ci_low'], tl['two_level_ci_high'])}; with few seeds it under-covers, "
                       "so it is shown, not used for the verdict.")
    summary.append(f"Exact sign-flip permutation test: p = {_fmt(p['sign_flip_p'], 3)}" if p["sign_flip_p"] is not None
                   else f"Sign-flip permutation test {p['sign_flip_note']}.")
    if p["within_pair_correlation"] is not None:
        summary.append(f"Within-pair correlation of the two methods' scores: {p['within_pair_correlation']:+.2f} "
                       "(positive: pairing removes shared noise).")
    if v["equivalence_margin"] is not None and v["tost_p"] is not None:
        summary.append(f"Equivalence (TOST) against the declared margin ±{v['equivalence_margin']:g}: "
                       f"p = {v['tost_p']:.3g}."
                       + (f" On this test set the 90% interval cannot be narrower than ±{v['margin_floor']:.4f} at "
                          f"{p['n_pairs']} pairs." if v.get("margin_floor") is not None else ""))
    det = v.get("detectable")
    if det and det["value"] is not None:
        high = f"{det['high']:.4f}" if det["high"] < 1 else "past any difference a score can have"
        summary.append(f"What these runs could detect: a true difference of ±{det['value']:.4f} with "
                       f"{det['power']:.0%} probability ({det['low']:.4f} to {high} over the 95% interval "
                       "of the SD); smaller ones less often. To plan a follow-up for an effect you care about: "
                       f"finetune-compare plan --pilot {output_dir} --effect 0.01.")
    aso = p["aso"]
    if aso["eps_min"] is not None:
        summary.append(f"Supporting evidence, not a verdict: ASO eps_min({a_name} > {b_name}) = {aso['eps_min']:.3f}, "
                       f"eps_min({b_name} > {a_name}) = {aso['eps_min_reverse']:.3f} ({aso['iterations']} bootstrap "
                       f"iterations, corrected for {aso['num_comparisons']} comparison(s); < 0.5: that method tends "
                       "to score higher).")
    blocks.append(Block("list", summary, caption="Primary metric"))
    return blocks


def _ranking_blocks(cmp: dict) -> list[Block]:
    """All methods against the reference, at the family-wise level every verdict here is made at."""
    m = len(cmp["comparisons"])
    level = next(iter(cmp["comparisons"].values()))["primary"]["verdict"].get("confidence") or 0.95
    rows = [["rank", "method", f"- {cmp['reference']} ({cmp['primary_metric']})", f"{level:.1%} CI", "p", "p × "
             f"{m} (Bonferroni)", "verdict"]]
    for i, r in enumerate(cmp["ranking"], 1):
        rows.append([str(i), r["method"], "0 (reference)" if r["kind"] == "reference" else _fmt(r["diff_mean"]),
                     _ci(r["ci_low"], r["ci_high"]), _fmt(r["p"], 3), _fmt(r["p_adjusted"], 3),
                     {"better": "better", "worse": "worse", "equivalent": "equivalent", "inconclusive":
                      "no difference detected", "too_few": "too few pairs", "reference": "–"}[r["kind"]]])
    return [Block("p", f"{m} methods are compared with the reference {cmp['reference']}, so each verdict is made at "
                       f"a family-wise 5%: Bonferroni, every test at 0.05/{m} and every interval at {level:.1%} (a "
                       "claim and its interval then always agree; Holm would be a little more powerful but gives "
                       "no intervals that match its claims). Ranked by the mean paired difference."),
            Block("table", rows, caption="Ranking against the reference")]


def _secondary_table(c: dict, keys: list[str]) -> list[list[str]]:
    rows = [["metric", f"{c['a']} - {c['b']} (mean)", "95% t-interval", "paired t p", "Holm-adjusted p"]]
    for k in keys:
        if k == c["primary_metric"]:
            continue
        s = c["secondary"][k]
        rows.append([_label(k), f"{s['diff_mean']:+.4f}" if s["diff_mean"] is not None else "–",
                     _ci(s["t_ci_low"], s["t_ci_high"]), _fmt(s["t_p"], 3), _fmt(s["p_holm"], 3)])
    return rows


def _efficiency_table(cmp: dict) -> list[list[str]]:
    rows = [["", *cmp["methods"]]]
    eff, per = cmp["efficiency"], cmp["per_method"]

    def row(label, fn):
        rows.append([label] + [fn(eff[m], m) for m in cmp["methods"]])

    row("trainable / total parameters",
        lambda e, m: f"{e['trainable_params']:,} / {e['total_params']:,} ({e['trainable_ratio']:.2%})")
    row("adapter / head parameters", lambda e, m: f"{e['adapter_params']:,} / {e['head_params']:,}")
    row("training time (s, mean ± std)", lambda e, m: f"{e['train_seconds']['mean']:.1f}"
        + (f" ± {e['train_seconds']['std']:.1f}" if e["train_seconds"]["std"] is not None else ""))
    row("time per epoch (s)", lambda e, m: _fmt(e["seconds_per_epoch"], 1))
    row("budget: max epochs / epochs run / optimizer steps",
        lambda e, m: f"{_fmt(e.get('max_epochs'), 0)} / {_fmt(e['epochs_run'], 2)} / {_fmt(e.get('steps'), 0)}")
    row("training throughput (samples/s, tokens/s)",
        lambda e, m: f"{e['train_samples_per_second']:.1f}, {e['train_tokens_per_second']:,.0f}")
    row("inference throughput (samples/s, tokens/s)",
        lambda e, m: f"{e['eval_samples_per_second']:.1f}, {e['eval_tokens_per_second']:,.0f}")
    row("peak memory (RSS MB / CUDA MB)", lambda e, m: f"{_fmt(e['peak_rss_mb'], 0)} / {_fmt(e['peak_cuda_mb'], 0)}")
    row("training memory: peak RSS above the run's start (MB; memory freed by earlier runs is returned to the OS "
        "first, so the figure does not depend on run order)", lambda e, m: _fmt(e.get("peak_rss_above_baseline_mb"), 0))
    row("frozen base stored in", lambda e, m: e.get("base_weights_dtype") or "–")
    row("attention in training (evaluation: SDPA)", lambda e, m: e.get("training_attention") or "–")
    row("saved model size (MB)", lambda e, m: f"{e['saved_bytes'] / 2**20:.2f}"
        + ("" if e["saved_bytes_measured"] else " (estimated: fp32 trained weights)"))
    # (a "per million trainable parameters" ratio was dropped: 0.03 vs 7.7 suggested a 276x advantage that means nothing)
    row("test macro-F1 per training minute",
        lambda e, m: _fmt(per[m]["macro_f1"]["mean"] / (e["train_seconds"]["mean"] / 60)
                          if per[m]["macro_f1"]["mean"] is not None else None, 4))
    return rows


def _data_table(summary: dict) -> list[list[str]]:
    labels = summary.get("labels") or list(CLASS_NAMES)
    rows = [["split", "source", *labels, "total"]]
    for split, by_source in summary["counts"].items():
        for s in [*summary["sources"], "total"]:
            counts = by_source[s]
            rows.append([split, display_name(s) if s != "total" else "all", *[f"{counts[c]:,}" for c in labels],
                         f"{sum(counts.values()):,}"])
    return rows


def build_blocks(output_dir: Path, cmp: dict, errors: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = []
    ref = cmp["reference"]
    b.append(Block("h2", SECTIONS["verdict"], "verdict"))
    for line in cmp.get("summary") or []:
        b.append(Block("p", line, caption="headline"))
    for line in cmp["headline"] or [f"Only {', '.join(cmp['methods'])} ran: nothing to compare against {ref}."]:
        b.append(Block("p", line))
    for f in cmp.get("flagged_runs", []):
        b.append(Block("p", f"Warning: {f['method']} seed {f['seed']} " + "; ".join(f["problems"]) + "."))
    if cmp.get("collapsed_runs"):
        b.append(Block("p", f"{len(cmp['collapsed_runs'])} run(s) predicted one class for every test example and are "
                            "excluded from every statistic: " + ", ".join(f"{c['method']} seed {c['seed']}"
                                                                          for c in cmp["collapsed_runs"]) + "."))
    still = {m: e for m, e in cmp["efficiency"].items() if e.get("best_at_last_evaluation")}
    if still:
        b.append(Block("p", "Not converged: " + "; ".join(
            f"{m}: {e['best_at_last_evaluation']} of {e['runs']} run(s) scored best on validation at their last "
            "evaluation, so they were still improving when their budget ended" for m, e in still.items())
            + ". A longer budget for them might change the comparison (raise num_epochs, or per method in "
              "method_overrides)."))
    unpaired = [x for x in cmp.get("excluded_runs", []) if x["reason"] != "collapsed"]
    if unpaired:
        b.append(Block("p", "Left out so that every table, plot and the verdict use the same pairs: "
                            + "; ".join(f"{x['method']} seed {x['seed']} ({x['reason']})" for x in unpaired) + "."))

    b.append(Block("h2", SECTIONS["setup"], "setup"))
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
        b.append(Block("table", _data_table(summary), caption="Data composition (examples per split, source and class)"))
        if summary.get("confounds"):
            b.append(Block("list", summary["confounds"], caption="Confounds"))
    config_path = next((p.parent / RUN_CONFIG for p in Layout(output_dir).finished_runs()
                        if (p.parent / RUN_CONFIG).is_file()), None)
    if config_path:
        b.append(Block("code", config_path.read_text(encoding="utf-8"), caption="Resolved configuration"))

    b.append(Block("h2", SECTIONS["results"], "results"))
    b.append(Block("p", "Test set, over the paired seeds the verdict uses. Cells: mean ± std over seeds [95% CI of "
                        "the mean: t-interval below 10 runs, BCa bootstrap from 10; cut at the metric's bounds 0 and 1, "
                        "marked *, where it would reach past them]; a single run shows its value only."))
    for group, title in (("overall", "Overall"), ("per_class", "Per class (F1)"), ("per_source", "Per source")):
        if cmp["metric_groups"][group]:  # (no per-source table for a single source)
            b.append(Block("table", _results_table(cmp, cmp["metric_groups"][group]), caption=title))

    b.append(Block("h2", SECTIONS["statistics"], "statistics"))
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
            b += _ranking_blocks(cmp)
        for key, c in cmp["comparisons"].items():
            b += _primary_blocks(c, output_dir)
            b.append(Block("table", _secondary_table(c, keys),
                           caption=f"Other metrics, {key.replace('_vs_', ' vs ')}"))

    b.append(Block("h2", SECTIONS["efficiency"], "efficiency"))
    b.append(Block("table", _efficiency_table(cmp)))

    b.append(Block("h2", SECTIONS["search"], "search"))
    b += _search_blocks(output_dir)

    b.append(Block("h2", SECTIONS["plots"], "plots"))
    captions = {
        "metric_comparison": "Test metrics: means with 95% t-intervals over seeds (no bars for a single run); "
                             "right: paired differences per seed with the verdict's interval", "learning_curves": "Learning curves",
        "confusion_matrices": "Confusion matrices", "efficiency": "Quality vs cost",
        "errors": "Errors and disagreements per source",
    }
    for name, path in plots.items():
        b.append(Block("img", path, caption=captions.get(name, name)))

    b.append(Block("h2", SECTIONS["errors"], "errors"))
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

    b.append(Block("h2", SECTIONS["reproduce"], "reproduce"))
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
    summaries = [read_json(p) for p in sorted(Layout(output_dir).optimize.glob("*/summary.json"))]
    if not summaries:
        return [Block("p", "No search in this folder: the runs used the configured hyperparameters "
                           "(python main.py --mode optimize tunes them).")]
    rows = [["method", "trials", "complete / pruned / failed", "best validation value", "best parameters",
             "steps saved by pruning"]]
    for s in summaries:
        st = s["states"]
        rows.append([s["method"], str(s["trials"]), f"{st.get('COMPLETE', 0)} / {st.get('PRUNED', 0)} / {st.get('FAIL', 0)}",
                     _fmt(s["best_value"]), ", ".join(f"{k}={v}" for k, v in (s["best_params"] or {}).items()) or "–",
                     f"{s['pruning']['saved_fraction']:.1%}"])
    blocks = [Block("table", rows, caption="Optuna studies (validation set only)")]
    for s in summaries:
        for name in s.get("plots", []):
            path = Layout(output_dir).study_dir(s["method"]) / name
            if path.is_file():
                blocks.append(Block("img", path, caption=f"{s['method']}: {name[:-4].replace('_', ' ')}"))
    return blocks


def _short(text: str, n: int = 220) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def build_report(output_dir: str | Path) -> dict:
    """Aggregate runs on disk, write comparison.json, plots/, report.md and report.html."""
    output_dir = Path(output_dir)
    log.info("statistics, plots and report for %s (test-set bootstrap and ASO take a few seconds)", output_dir)
    cmp = build_comparison(output_dir)
    errors = error_analysis(output_dir, cmp["methods"])
    cmp["error_analysis"] = errors
    plots = make_plots(output_dir, cmp, errors)
    cmp["plots"] = {k: str(v.relative_to(output_dir)) for k, v in plots.items()}
    layout = Layout(output_dir)
    write_json(layout.comparison, cmp)
    write_exports(output_dir, cmp)
    blocks = build_blocks(output_dir, cmp, errors, plots)
    atomic_write_text(layout.report_md, render_markdown(blocks, output_dir))
    atomic_write_text(layout.report_html, render_html(blocks))
    log.info("report: %s", layout.report_html)
    return cmp
