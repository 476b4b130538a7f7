"""The report's tables and the statistics blocks: numbers formatted once for the Markdown and HTML reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.sources import display_name
from ..labels import CLASS_NAMES
from ..metric_names import MetricKey, keys_by_name
from .report_blocks import Block
from .serving_cost import serving_rows
from .verdict import shared_variance_mc_se


def format_value(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def mean_ci(s: dict) -> str:
    if s["mean"] is None:
        return "–"
    txt = f"{s['mean']:.4f}"
    if s["std"] is not None:
        txt += f" ± {s['std']:.4f}"
    if s["ci_low"] is not None:
        txt += f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]" + ("*" if s.get("ci_clipped") else "")
    return txt


def label(name: str, known: dict[str, MetricKey]) -> str:
    """A score as a table shows it: 'macro f1 (SST-5)' for macro_f1 on the SST-5 source; a group of your data
    likewise. `known`: comparison.json's names and their keys (`keys_by_name`); an unknown name is shown as
    written."""
    key = known.get(name)
    if key is not None and key.group == "per_source":
        return f"{key.metric.replace('_', ' ')} ({display_name(key.part)})"
    return name.replace("_", " ")


def results_table(cmp: dict, keys: list[str]) -> list[list[str]]:
    header = ["metric"] + (["base (untrained)"] if cmp.get("base") else []) + cmp["methods"]
    rows = [header]
    known = keys_by_name(cmp, CLASS_NAMES)
    for k in keys:
        row = [label(k, known)]
        if cmp.get("base"):
            row.append(format_value(cmp["base"]["test"].get(k)))
        row += [mean_ci(cmp["per_method"][m][k]) for m in cmp["methods"]]
        rows.append(row)
    return rows


def ci_text(low, high) -> str:
    return f"[{low:+.4f}, {high:+.4f}]" if low is not None else "–"


# What the test-set bootstrap assumes, stated wherever its figures are used (issue 37; docs/statistics.md)
INDEPENDENCE = ("Assumption: the test-set bootstrap resamples test examples as independent. Where several examples "
                "belong together (IMDB holds up to 30 reviews of one film, SST-5 phrases share sentences, your own "
                "data may hold several texts per user or product), the test-set part of the interval is too narrow: "
                "in an independent audit's simulation with the method effect shared by clusters of 10 examples, the "
                "rule claimed a difference on this test set that does not carry over to other test sets in 10% of "
                "folders at 5 pairs and 35% at 10 pairs. "
                "Declare them with cluster_column (your own data) and whole clusters are resampled.")


def _mc_se(tl: dict, n: int) -> str:
    return f"{shared_variance_mc_se(tl, n):.1e}" + ("" if tl.get("shared_variance_mc_se") is not None else
                                                   " (normal theory: written before it was measured)")


def primary_blocks(c: dict, output_dir: Path) -> list[Block]:
    """The primary metric: per-seed differences, test-level evidence, intervals, tests, what could be detected."""
    p, v, tl, a_name, b_name = c["primary"], c["primary"]["verdict"], c["primary"]["test_level"], c["a"], c["b"]
    metric = c["primary_metric"]
    blocks = [Block("p", v["text"])]
    rows = [["seed", f"{a_name} - {b_name}", "test-set 95% CI (paired bootstrap)", "test-set SE",
             "McNemar exact p (these two trained models)"]]
    per_seed = {s["seed"]: s for s in (tl or {}).get("per_seed", [])}
    for seed, d in zip(p["seeds"], p["diffs"]):
        s = per_seed.get(seed)
        rows.append([str(seed), f"{d:+.4f}", ci_text(s["ci_low"], s["ci_high"]) if s else "–",
                     format_value(s["se"]) if s else "–", format_value(s["mcnemar_p"], 3) if s else "–"])
    blocks.append(Block("table", rows, caption=f"{metric}, {a_name} minus {b_name}, per paired seed. The per-seed "
                                               "interval and McNemar's test compare the two models trained with that "
                                               "seed on this test set, not the two methods: seed noise is not in them"))
    sd = p["diff_sd"]
    shared = v.get("shared_test_variance")
    summary = [
        f"Mean paired difference {p['diff_mean']:+.4f} over {p['n_pairs']} pairs; SD of the differences "
        f"{format_value(sd)} (seed, data-draw and each pair's own test-set noise).",
        f"Test-set sampling: SE of the mean {format_value(v['se_test'])} (bootstrap, models fixed); the part shared by all "
        f"pairs through the one test set, c = {format_value(shared, 7)} (c = (n² SE_test² − Σ se_k²) / (n(n−1)), floored at "
        f"0; Monte Carlo SE {_mc_se(tl, p['n_pairs'])} over {tl['n_resamples']:,} resamples), is the only test-set "
        "term added to the spread, which already holds each pair's own."
        if tl else "No predictions found: the interval covers seed and data-draw noise only.",
        f"Interval used for the verdict: mean ± t(0.975, {p['n_pairs'] - 1}) × sqrt(SD²/n + c) = "
        f"{ci_text(v['ci_low'], v['ci_high'])}, its test p = {format_value(v.get('p'), 3)}; the paired t-interval "
        "(c left out) is "
        f"{ci_text(p['t_ci_low'], p['t_ci_high'])}, paired t-test p = {format_value(p['t_p'], 3)}.",
    ]
    if tl:
        summary.append(f"Two-level bootstrap (resample seeds, then test examples; {tl['n_resamples']} resamples): "
                       f"{ci_text(tl['two_level_ci_low'], tl['two_level_ci_high'])}; with few seeds it under-covers, "
                       "so it is shown, not used for the verdict.")
    if tl:
        summary.append(INDEPENDENCE if tl.get("resampled", "examples") == "examples" else
                       f"The test-set bootstrap resampled whole clusters ({tl['n_clusters']:,} clusters of the data's "
                       "cluster_column, within each source), so examples that belong together count as one draw.")
    summary.append(f"Exact sign-flip permutation test: p = {format_value(p['sign_flip_p'], 3)}" if p["sign_flip_p"] is not None
                   else f"Sign-flip permutation test {p['sign_flip_note']}.")
    if p["within_pair_correlation"] is not None:
        summary.append(f"Within-pair correlation of the two methods' scores: {p['within_pair_correlation']:+.2f} "
                       "(positive: pairing removes shared noise).")
    if v["equivalence_margin"] is not None and v["tost_p"] is not None:
        summary.append(f"Equivalence (TOST) against the declared margin ±{v['equivalence_margin']:g}: "
                       f"p = {v['tost_p']:.3g}."
                       + (f" On this test set, test-set noise alone is expected to keep the 90% interval about "
                          f"±{v['margin_floor']:.4f} wide at {p['n_pairs']} pairs (an estimate from the bootstrap, "
                          "not a bound)." if v.get("margin_floor") is not None else ""))
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


def secondary_table(c: dict, keys: list[str], known: dict[str, MetricKey]) -> list[list[str]]:
    rows = [["metric", f"{c['a']} - {c['b']} (mean)", "95% t-interval", "paired t p", "Holm-adjusted p"]]
    for k in keys:
        if k == c["primary_metric"]:
            continue
        s = c["secondary"][k]
        rows.append([label(k, known), f"{s['diff_mean']:+.4f}" if s["diff_mean"] is not None else "–",
                     ci_text(s["t_ci_low"], s["t_ci_high"]), format_value(s["t_p"], 3), format_value(s["p_holm"], 3)])
    return rows


def efficiency_table(cmp: dict) -> list[list[str]]:
    rows = [["", *cmp["methods"]]]
    eff, per = cmp["efficiency"], cmp["per_method"]

    def row(label, fn):
        rows.append([label] + [fn(eff[m], m) for m in cmp["methods"]])

    row("trainable / total parameters",
        lambda e, m: f"{e['trainable_params']:,} / {e['total_params']:,} ({e['trainable_ratio']:.2%})")
    row("adapter / head parameters", lambda e, m: f"{e['adapter_params']:,} / {e['head_params']:,}")
    row("training time (s, mean ± std)", lambda e, m: f"{e['train_seconds']['mean']:.1f}"
        + (f" ± {e['train_seconds']['std']:.1f}" if e["train_seconds"]["std"] is not None else ""))
    row("time per epoch (s)", lambda e, m: format_value(e["seconds_per_epoch"], 1))
    row("budget: max epochs / epochs run / optimizer steps",
        lambda e, m: f"{format_value(e.get('max_epochs'), 0)} / {format_value(e['epochs_run'], 2)} / {format_value(e.get('steps'), 0)}")
    row("training throughput (samples/s, tokens/s)",
        lambda e, m: f"{e['train_samples_per_second']:.1f}, {e['train_tokens_per_second']:,.0f}")
    row("inference throughput (samples/s, tokens/s)",
        lambda e, m: f"{e['eval_samples_per_second']:.1f}, {e['eval_tokens_per_second']:,.0f}")
    row("peak memory (RSS MB / CUDA MB)", lambda e, m: f"{format_value(e['peak_rss_mb'], 0)} / {format_value(e['peak_cuda_mb'], 0)}")
    row("training memory: peak RSS above the run's start (MB; memory freed by earlier runs is returned to the OS "
        "first, so the figure does not depend on run order)", lambda e, m: format_value(e.get("peak_rss_above_baseline_mb"), 0))
    row("frozen base stored in", lambda e, m: e.get("base_weights_dtype") or "–")
    row("attention in training (evaluation: SDPA)", lambda e, m: e.get("training_attention") or "–")
    row("saved model size (MB)", lambda e, m: f"{e['saved_bytes'] / 2**20:.2f}"
        + ("" if e["saved_bytes_measured"] else " (estimated: fp32 trained weights)"))
    rows += serving_rows(cmp)
    # (a "per million trainable parameters" ratio was dropped: 0.03 vs 7.7 suggested a 276x advantage that means nothing)
    row("test macro-F1 per training minute",
        lambda e, m: format_value(per[m]["macro_f1"]["mean"] / (e["train_seconds"]["mean"] / 60)
                          if per[m]["macro_f1"]["mean"] is not None else None, 4))
    return rows


def data_table(summary: dict) -> list[list[str]]:
    labels = summary.get("labels") or list(CLASS_NAMES)
    rows = [["split", "source", *labels, "total"]]
    for split, by_source in summary["counts"].items():
        for s in [*summary["sources"], "total"]:
            counts = by_source[s]
            rows.append([split, display_name(s) if s != "total" else "all", *[f"{counts[c]:,}" for c in labels],
                         f"{sum(counts.values()):,}"])
    return rows
