"""What each method gives up: with held-out sources, its score on sources training never saw (out-of-domain
transfer) and, where the base checkpoint already predicts the task, its change from that checkpoint there
(forgetting of what it could do); with drift recorded, how far it moved from the base (CKA, intruder dimensions).

Every score figure is a paired difference over seeds with the verdict's kind of interval: a t-interval over the
pairs whose standard error adds the test-sampling variance the pairs share (the test-set bootstrap on the examples
the figure is computed on), and that interval's own p. Drift figures get the paired t-interval (the probe is fixed).
Holm adjusts within a family: a comparison's in-domain, out-of-domain and drift rows; its per-source rows; the
methods' changes from base. A figure is "detected" when its Holm-adjusted p < 0.05.

The base row is one untrained model scored once on the same test set, so "method - base" is paired per seed with
the same base score, and two methods' changes from base differ by exactly their out-of-domain difference: the
methods are compared on what they kept by the out-of-domain row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.sources import display_name
from ..evaluation.run_record import RunRecord
from ..layout import BASE_METHOD, Layout
from ..metric_names import MetricKey
from .run_files import scores
from .statistics import ALPHA, MIN_PAIRS, describe, holm, paired
from .test_evidence import paired_runs_evidence
from .verdict import shared_test_variance, verdict_interval, verdict_p

Runs = dict[str, dict[int, RunRecord]]


def domain_metric(primary: MetricKey) -> str:
    """The metric the figures use: the primary's (macro_f1 when the primary is a per-class or per-source score)."""
    return primary.metric if primary.group in ("overall", "domain") else "macro_f1"


def paired_figure(figure: str, key: MetricKey, arms: dict[str, dict[int, Path]], a: dict[int, float],
                  b: dict[int, float], seed: int, held_out: list[str]) -> dict:
    """One figure: first arm minus second, paired over seeds, with the verdict's interval and that interval's p."""
    p = paired(a, b)
    n = p["n_pairs"]
    seeds = p["seeds"]
    tl = (paired_runs_evidence({name: {s: dirs[s] for s in seeds} for name, dirs in arms.items()}, key, seed, held_out)
          if n >= 2 else None)
    interval = verdict_interval(p, shared_test_variance(tl, n))
    with_test = tl is not None
    return {
        "figure": figure, "kind": key.part if key.group == "domain" else key.group, "metric": key.name,
        "n_pairs": n, "seeds": seeds, "diffs": p["diffs"],
        "diff_mean": p["diff_mean"], "ci_low": interval["low"], "ci_high": interval["high"],
        # below the verdict's least number of pairs, no test (as for the verdict): the figure is shown, not judged
        "p": verdict_p(p["diff_mean"], interval["se"], interval["df"]) if n >= MIN_PAIRS else None,
        "n_test": tl["n_test"] if with_test else None,
        "interval": ("95% t-interval over pairs with the test set's shared sampling variance (test-set bootstrap)"
                     if with_test else "95% paired t-interval over pairs (seed noise only: no predictions to "
                     "resample)"),
    }


def _adjust(rows: list[dict]) -> list[dict]:
    adjusted = holm({str(i): r["p"] for i, r in enumerate(rows)})
    for i, r in enumerate(rows):
        r["p_holm"] = adjusted[str(i)]
        r["detected"] = r["p_holm"] is not None and r["p_holm"] < ALPHA
    return rows


# the drift figures compared between methods: (name, how a run records it, what it is)
DRIFT_FIGURES = (("cka_last", lambda d: d["cka"]["last"], "CKA with the base, last layer"),
                 ("intruders_total", lambda d: d["intruders"]["total"], "intruder dimensions, total"))


def drift_figure(name: str, label: str, a: str, b: str, va: dict[int, float], vb: dict[int, float]) -> dict:
    """A drift figure, first method minus second, paired over seeds: the paired t-interval and its p (the probe
    texts are fixed, so there is no test-set part)."""
    p = paired(va, vb)
    low, high = p["t_ci_low"], p["t_ci_high"]
    if low is not None and name.startswith("cka"):  # a CKA difference lies in [-1, 1]: cut there, as the verdict's
        low, high = max(low, -1.0), min(high, 1.0)
    return {"a": a, "b": b, "figure": label, "kind": "drift", "metric": name, "n_pairs": p["n_pairs"],
            "seeds": p["seeds"], "diffs": p["diffs"], "diff_mean": p["diff_mean"], "ci_low": low, "ci_high": high,
            "p": p["t_p"] if p["n_pairs"] >= MIN_PAIRS else None, "n_test": None,
            "interval": "95% paired t-interval over pairs (seed noise only: the probe texts are fixed)"}


def _drift_values(runs: dict[int, RunRecord], read) -> dict[int, float]:
    return {s: float(read(r.drift)) for s, r in runs.items() if r.drift}


def drift_summary(runs: Runs) -> dict | None:
    """Per method: CKA (last layer, mean over layers) and intruder dimensions (total, per layer type), described
    over its runs, with the declared probe size, k and epsilon; None when no run recorded drift."""
    recorded = {m: [r.drift for r in by_seed.values() if r.drift] for m, by_seed in runs.items()}
    if not any(recorded.values()):
        return None
    out = {}
    for m, drifts in recorded.items():
        if not drifts:
            continue
        types = sorted({t for d in drifts for t in d["intruders"]["per_layer_type"]})
        out[m] = {"cka_last": describe([d["cka"]["last"] for d in drifts]),
                  "cka_mean": describe([d["cka"]["mean"] for d in drifts]),
                  "intruders_total": describe([d["intruders"]["total"] for d in drifts], bounds=None),
                  "intruders_per_layer_type": {t: float(np.mean([d["intruders"]["per_layer_type"].get(t, 0)
                                                                 for d in drifts])) for t in types},
                  "matrices_changed": float(np.mean([d["intruders"]["matrices_changed"] for d in drifts])),
                  "seconds": float(np.mean([d["seconds"] for d in drifts]))}
    first = next(d for drifts in recorded.values() for d in drifts)
    return {"methods": out, "probe_texts": first["cka"]["probe_texts"], "top_k": first["intruders"]["top_k"],
            "epsilon": first["intruders"]["epsilon"]}


def gives_up(output_dir: Path, runs: Runs, base: RunRecord | None, reference: str, others: list[str],
             primary: MetricKey, held_out: list[str], seed: int) -> dict | None:
    """comparison.json's `gives_up`: per comparison its in-domain and out-of-domain rows (held-out sources) and its
    drift rows (runs that recorded drift), Holm-adjusted together; per method its change from the base checkpoint
    out of domain (None without a base row: the checkpoint did not predict the task) and its drift. None when the
    runs held nothing out and recorded no drift."""
    drift = drift_summary(runs)
    if not held_out and drift is None:
        return None
    layout = Layout(output_dir)
    metric = domain_metric(primary)
    inside, outside = MetricKey(metric, "domain", "in_domain"), MetricKey(metric, "domain", "out_of_domain")
    dirs = {m: {s: layout.run_dir(m, s) for s in by_seed} for m, by_seed in runs.items()}
    sources = sorted({s for by_seed in runs.values() for r in by_seed.values() for s in r.test.get("per_source", {})})
    comparisons, per_source = {}, {}
    for m in others:
        arms = {m: dirs[m], reference: dirs[reference]}
        if len(sources) > 1:  # each source with the verdict's kind of interval over its own test examples
            per_source[f"{m}_vs_{reference}"] = _adjust([
                {"a": m, "b": reference, **paired_figure(f"{display_name(s)} score", key, arms,
                                                         scores(runs[m], key), scores(runs[reference], key), seed,
                                                         held_out)}
                for s in sources for key in [MetricKey(metric, "per_source", s)]])
        rows = [{"a": m, "b": reference, **paired_figure(f"{label} score", key, arms, scores(runs[m], key),
                                                         scores(runs[reference], key), seed, held_out)}
                for label, key in (("in-domain", inside), ("out-of-domain", outside))] if held_out else []
        if drift:
            rows += [drift_figure(name, label, m, reference, _drift_values(runs[m], read),
                                  _drift_values(runs[reference], read)) for name, read, label in DRIFT_FIGURES]
        comparisons[f"{m}_vs_{reference}"] = _adjust(rows)
    forgetting = None
    if held_out and base is not None and outside.value(base.test) is not None:
        base_score = outside.value(base.test)
        forgetting = {"metric": outside.name, "base": base_score, "methods": dict(zip(sorted(runs), _adjust([
            {"method": m, **paired_figure("change from base", outside,
                                          {m: dirs[m], BASE_METHOD: {s: layout.base_run for s in dirs[m]}},
                                          scores(runs[m], outside),
                                          {s: base_score for s in runs[m]}, seed, held_out)}
            for m in sorted(runs)])))}
    trade_offs = {"held_out": held_out, "metric": metric, "comparisons": comparisons, "per_source": per_source,
                  "forgetting": forgetting, "drift": drift}
    return {**trade_offs, "lines": domain_lines(trade_offs)}


def gives_up_records(trade_offs: dict | None) -> dict[str, dict]:
    """The figures as the trackers' verdict records ({name: {kind, diff_mean, ci_low, ci_high, n_pairs, text}}):
    'lora_vs_full.macro_f1_out_of_domain', 'lora_vs_full.cka_last', 'lora_vs_base.macro_f1_out_of_domain'."""
    if not trade_offs:
        return {}
    out = {}
    named = [(f"{name}.{r['metric']}", r) for table in ("comparisons", "per_source")
             for name, rows in (trade_offs.get(table) or {}).items() for r in rows]
    named += [(f"{m}_vs_base.{r['metric']}", r) for m, r in ((trade_offs.get("forgetting") or {}).get("methods")
                                                            or {}).items()]
    for key, r in named:
        kind = "too_few" if r.get("p") is None else "detected" if r["detected"] else "not_detected"
        unit = trade_offs["metric"] if r["kind"] != "drift" else ""
        out[key] = {"kind": kind, "diff_mean": r["diff_mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                    "n_pairs": r["n_pairs"], "text": f"{key}: {figure_text(r, unit)}"}
    return out


def _held_text(held_out: list[str]) -> str:
    return ", ".join(display_name(s) for s in held_out)


def out_of_domain_row(rows: list[dict]) -> dict:
    """A comparison's out-of-domain row (held-out sources only)."""
    return next(r for r in rows if r["kind"] == "out_of_domain")


def figure_text(r: dict, metric: str) -> str:
    """'-0.031 [-0.144, +0.082] macro_f1 (Holm p = 0.358)': a figure's difference, interval and adjusted p."""
    if r["diff_mean"] is None:
        return "no pairs"
    ci = f" [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]" if r["ci_low"] is not None else ""
    p = (f" (Holm p = {r['p_holm']:.3g})" if r.get("p_holm") is not None else
         f" (too few pairs to test: {r['n_pairs']}; need {MIN_PAIRS})")
    return f"{r['diff_mean']:+.3f}{ci}{' ' + metric if metric else ''}{p}"


def _finding(r: dict, better: str) -> str:
    if r.get("p") is None:
        return "not tested"
    return better if r["detected"] else "no difference detected (not evidence of no difference)"


def domain_lines(trade_offs: dict | None) -> dict[str, list[str]]:
    """Per comparison, its in-domain and out-of-domain lines (the terminal's and the report's verdict block)."""
    if not trade_offs or not trade_offs["held_out"]:
        return {}
    held, metric = _held_text(trade_offs["held_out"]), trade_offs["metric"]
    out = {}
    for name, rows in trade_offs["comparisons"].items():
        lines = []
        for r in rows:
            if r["kind"] not in ("in_domain", "out_of_domain"):
                continue
            where = "Out of domain (held out: " + held + ")" if r["kind"] == "out_of_domain" else \
                "In domain (the sources trained on)"
            winner = r["a"] if (r["diff_mean"] or 0) > 0 else r["b"]
            lines.append(f"{where}: {r['a']} - {r['b']} = {figure_text(r, metric)}: "
                         f"{_finding(r, f'{winner} scores higher')}.")
        out[name] = lines
    return out


def gives_up_clauses(trade_offs: dict | None) -> dict[str, str]:
    """Per comparison, the headline's clause on what was, or was not, detected out of domain and, with a base
    row, in what each method kept of the checkpoint's own skill there."""
    if not trade_offs or not trade_offs["held_out"]:
        return {}
    held, metric = _held_text(trade_offs["held_out"]), trade_offs["metric"]
    forgetting = trade_offs.get("forgetting")
    out = {}
    for name, rows in trade_offs["comparisons"].items():
        r = out_of_domain_row(rows)
        a, b = r["a"], r["b"]
        winner = a if (r["diff_mean"] or 0) > 0 else b
        text = (f"Out of domain (held out: {held}): {a} - {b} = {figure_text(r, metric)}: "
                f"{_finding(r, f'{winner} transfers better')}.")
        fa, fb = (forgetting["methods"].get(m) if forgetting else None for m in (a, b))
        if fa and fb:
            kept = _finding(r, f"{winner} kept more of what the base checkpoint could do")
            text += (f" Change from the base checkpoint there: {a} {figure_text(fa, metric)}, {b} "
                     f"{figure_text(fb, metric)}; between them: {kept}.")
        out[name] = text
    return out
