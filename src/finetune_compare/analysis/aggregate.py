"""Aggregate the run folders on disk into the comparison: statistics, efficiency, verdict.

Reads only files (`runs/<method>/seed-<seed>/metrics.json`, `runs/base/metrics.json`), so a
report can be rebuilt without retraining and a resumed comparison gives the same answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import yaml

from ..layout import METRICS, RUN_CONFIG, Layout, seed_of
from ..errors import UserError
from ..utils.io import write_json
from .fairness_checks import fairness_checks, fairness_clause
from .learning_checks import learning_caution, not_learned
from ..evaluation.run_record import RunRecord
from .run_files import read_record, scores
from .test_evidence import test_set_evidence
from .gives_up import gives_up, gives_up_clauses
from .serving_cost import method_serving, read_serving, serving_clause
from .statistics import ASO_ITERATIONS, MIN_PAIRS, aso, describe, holm, paired
from .many_methods import pareto, possibly_best
from .verdict import confidence_label, decide, holm_family, ranking
from ..budgets import budget_text, declared_budget, ran_text
from ..config.keys import default_of
from ..metric_names import MetricKey, metric_groups, record_keys
from .result_types import ComparisonResult, MethodComparison

log = logging.getLogger(__name__)

Runs = dict[str, dict[int, RunRecord]]  # {method: {seed: record}}


def load_runs(output_dir: str | Path) -> tuple[Runs, RunRecord | None]:
    """({method: {seed: record}}, the base row's record or None) from complete runs on disk; folders that are not
    ours (a backup copy 'seed-42-old', a copied method folder) are ignored with a warning."""
    layout = Layout(output_dir)
    root = layout.runs
    if not root.is_dir():
        raise UserError(f"no results in '{output_dir}': expected {root}/<method>/seed-<seed>/metrics.json")
    for stray in layout.stray_run_folders():
        log.warning("ignoring %s: not a run folder of finetune-compare (runs/<method>/seed-<n>)", stray)
    runs: Runs = {}
    for path in layout.finished_runs():
        record = read_record(path)
        method, seed = path.parent.parent.name, seed_of(path.parent)
        if record.method != method or record.seed != seed:
            log.warning("ignoring %s: it records %s seed %s, not the folder's %s seed %d (a copied run?)", path,
                        record.method, record.seed, method, seed)
            continue
        runs.setdefault(method, {})[seed] = record
    base_path = layout.base_run / METRICS
    base = read_record(base_path) if base_path.is_file() else None
    if not runs:
        raise UserError(f"no complete runs under {root} (a run is complete when its metrics.json exists)")
    return runs, base


def named_scores(test: dict) -> dict[str, float]:
    """Every score of a test section under its flat name: the base row as comparison.json records it."""
    return {k.name: k.value(test) for k in record_keys(test)}


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def efficiency(runs: dict[int, RunRecord]) -> dict:
    rows = list(runs.values())
    first = rows[0]
    params = first.params
    t = [r.timing for r in rows]
    saved = [r.saved_model["bytes"] for r in rows if r.saved_model]
    # without save_model, estimate what it would write: fp32 weights of the trained part
    # (the adapter + head for PEFT methods, every weight for full fine-tuning)
    estimate = 4 * (params["trainable"] if params["adapter"] else params["total"])
    return {
        "trainable_params": params["trainable"], "total_params": params["total"],
        "adapter_params": params["adapter"], "head_params": params["head"],
        "trainable_ratio": params["trainable_ratio"],
        "train_seconds": describe([x["train_seconds"] for x in t], bounds=None),
        "seconds_per_epoch": _mean(x.get("seconds_per_epoch") for x in t),
        "epochs_run": _mean(r.training["epochs_run"] for r in rows),
        "steps": _mean(r.training.get("steps") for r in rows),
        "max_epochs": _mean(r.training.get("max_epochs") for r in rows),
        "budget": first.training.get("budget"),  # declared (the same for every method) or its own epochs
        "train_samples_per_second": _mean(x["train_samples_per_second"] for x in t),
        "train_tokens_per_second": _mean(x["train_tokens_per_second"] for x in t),
        "eval_samples_per_second": _mean(x["eval_samples_per_second"] for x in t),
        "eval_tokens_per_second": _mean(x["eval_tokens_per_second"] for x in t),
        "peak_rss_mb": _mean(r.memory["peak_rss_mb"] for r in rows),
        "peak_rss_above_baseline_mb": _mean(r.memory.get("peak_rss_above_baseline_mb") for r in rows),
        "base_weights_dtype": params.get("base_weights_dtype"),
        "training_attention": params.get("training_attention"),
        "peak_cuda_mb": _mean(r.memory.get("peak_cuda_mb") for r in rows),
        "saved_bytes": _mean(saved) if saved else estimate,
        "saved_bytes_measured": bool(saved),
        # the best validation score came at the last evaluation: still improving when the budget ran out
        "best_at_last_evaluation": sum(1 for r in rows if (r.validation or {}).get("best_step") is not None
                                       and r.validation["best_step"] == r.training.get("steps")),
        "runs": len(rows),
    }


def is_collapsed(test: dict) -> bool:
    """One class predicted for every test example (macro-F1 1/3 of one class's F1): not a real model."""
    cm = np.asarray(test.get("confusion_matrix") or [[0]])
    return int((cm.sum(axis=0) > 0).sum()) <= 1


def compare_methods(output_dir: Path, a: str, b: str, runs: Runs, keys: list[MetricKey], primary: MetricKey,
                    margin: float | None, num_comparisons: int, seed: int, supporting_evidence: bool = True,
                    held_out: list[str] = ()) -> MethodComparison:
    """A minus B: the primary metric decides; the other metrics get paired tests with Holm-adjusted p."""
    prim = paired(scores(runs[a], primary), scores(runs[b], primary))
    tl = (test_set_evidence(output_dir, a, b, prim["seeds"], primary, seed, held_out) if prim["n_pairs"] >= 2
          else None)
    verdict = decide(a, b, primary.name, prim, tl, margin, comparisons=max(1, num_comparisons))
    aso_ab = aso_ba = None
    if prim["n_pairs"] >= MIN_PAIRS and supporting_evidence:  # computed after, and apart from, the verdict
        va, vb = ([primary.value(runs[m][s].test) for s in prim["seeds"]] for m in (a, b))
        aso_ab, aso_ba = aso(va, vb, num_comparisons, seed), aso(vb, va, num_comparisons, seed)
    secondary = {k.name: paired(scores(runs[a], k), scores(runs[b], k)) for k in keys if k != primary}
    adjusted = holm({k: v["t_p"] for k, v in secondary.items()})
    for k, v in secondary.items():
        v["p_holm"] = adjusted[k]
    return {
        "a": a, "b": b, "primary_metric": primary.name,
        "primary": {**prim, "test_level": tl, "verdict": verdict,
                    "aso": {"eps_min": aso_ab, "eps_min_reverse": aso_ba, "num_comparisons": num_comparisons,
                            "iterations": ASO_ITERATIONS}},
        "secondary": secondary,
    }


def _ratio(a, b, digits: int = 2) -> str:
    return f"{a / b:.{digits}f}x" if a is not None and b else "–"


def _budgets_phrase(a: str, b: str, ea: dict, eb: dict) -> str:
    declared = declared_budget(ea.get("budget"))
    if declared and ea.get("budget") == eb.get("budget"):
        return f"with the same declared budget of {declared} each (ran {ran_text(ea)} ({a}) and {ran_text(eb)} ({b}))"
    return f"with budgets of {budget_text(ea)} ({a}) and {budget_text(eb)} ({b})"


def cost_line(a: str, b: str, eff: dict) -> str:
    """Parameters, and time and memory ratios with each method's budget beside them (a ratio means nothing
    without it)."""
    ea, eb = eff[a], eff[b]
    return (f"{a} trains {ea['trainable_params']:,} parameters ({ea['trainable_ratio']:.2%} of the model) vs "
            f"{eb['trainable_params']:,}; {_budgets_phrase(a, b, ea, eb)}: training time "
            f"{_ratio(ea['train_seconds']['mean'], eb['train_seconds']['mean'])}, training memory (peak RSS above "
            f"each run's start) {_ratio(ea.get('peak_rss_above_baseline_mb'), eb.get('peak_rss_above_baseline_mb'))}"
            + (f", peak CUDA memory {_ratio(ea['peak_cuda_mb'], eb['peak_cuda_mb'])}" if ea.get("peak_cuda_mb") else "")
            + f", saved size {_ratio(ea['saved_bytes'], eb['saved_bytes'], 3)} of {b}'s"
            + (serving_clause(a, b, eff) or "."))


def summary_line(cmp: dict, eff: dict) -> str:
    """The one line a user can act on: what was found, the difference and its interval, and the cost."""
    a, b, v = cmp["a"], cmp["b"], cmp["primary"]["verdict"]
    metric, d = cmp["primary_metric"], cmp["primary"]["diff_mean"]
    share = f"with {eff[a]['trainable_ratio']:.2%} of the parameters"
    if v["kind"] == "too_few":
        so_far = f": {a} - {b} = {d:+.3f} {metric} so far" if d is not None else ""
        return f"Too few pairs for a verdict ({v['n_pairs']}; need {MIN_PAIRS}){so_far}."
    ci = f"{a} - {b} = {d:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] {metric}"
    if v["kind"] == "equivalent":
        low, high = v["equivalence_ci"]
        # TOST's: 90%, more when corrected for several methods
        level = confidence_label(1 - 2 * v.get("equivalence_alpha", v.get("alpha", 0.05)))
        return (f"Equivalent within ±{v['equivalence_margin']:g}: {a} - {b} = {d:+.3f} ({level} CI [{low:+.3f}, "
                f"{high:+.3f}]) {metric}, {a} {share}.")
    if v["kind"] in ("better", "worse"):
        winner = a if v["kind"] == "better" else b
        return f"{winner} is better: {ci}; {a} {share}."
    return f"No difference detected on this data and budget: {ci}, {a} {share} (not evidence of no difference)."


def headline(comparisons: dict, eff: dict, not_learned_runs: list[dict] | None = None,
             trade_offs: dict | None = None, fairness: dict | None = None) -> list[str]:
    """Per comparison: the verdict in full, a caution when it rests on runs that did not learn, what the fairness
    checks found about either method (search edges, tuning still rising, a short budget), with held-out sources
    what was (or was not) detected out of domain, then its cost."""
    clauses = gives_up_clauses(trade_offs)
    return [" ".join(filter(None, [cmp["primary"]["verdict"]["text"], learning_caution(cmp, not_learned_runs),
                                   # the reference's own findings once (the report), not beside every verdict
                                   fairness_clause(cmp["a"], cmp["b"] if len(comparisons) == 1 else None, fairness),
                                   clauses.get(name), cost_line(cmp["a"], cmp["b"], eff)]))
            for name, cmp in comparisons.items()]


SETTINGS = ("primary_metric", "equivalence_margin", "reference")  # what the statistics read of the experiment


def _experiment_settings(output_dir: Path) -> dict:
    """primary_metric, equivalence_margin and reference as the runs recorded them (results are files first). Read
    key by key, not through the config loader, so a report can be rebuilt from runs of an older version whose
    config.yaml holds a setting since renamed; a key a run does not record has the config's default (its meaning
    when that run was made)."""
    for path in (p.parent / RUN_CONFIG for p in Layout(output_dir).finished_runs()):
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(cfg, dict):
            return {k: cfg.get(k, default_of(k)) for k in SETTINGS}
    return {k: default_of(k) for k in SETTINGS}


def held_out_sources(runs: Runs, output_dir) -> list[str]:
    """The sources the runs held out of training (their test sections say), the same for every run or an error."""
    found = {tuple((r.test.get("domain") or {}).get("held_out") or ()) for by_seed in runs.values()
             for r in by_seed.values()}
    if len(found) > 1:
        raise UserError(f"{output_dir}: runs held out different sources ({' vs '.join(map(str, sorted(found)))}); "
                        "they cannot be compared: one comparison holds out one set of sources")
    return list(found.pop()) if found else []


def primary_metric_key(name: str, first: RunRecord, groups: dict[str, list[MetricKey]], output_dir) -> MetricKey:
    """The primary metric's key among the scores the runs record; it joins its group's table if not there yet."""
    recorded = {k.name: k for k in record_keys(first.test)}
    if name not in recorded:
        raise UserError(f"{output_dir}: primary_metric {name!r} is not a score these runs record (they record "
                        f"{', '.join(recorded)}); set primary_metric to one of them")
    key = recorded[name]
    if key not in groups.setdefault(key.group, []):
        groups[key.group].append(key)
    return key


def paired_runs(valid: Runs, collapsed: set, methods: list[str]) -> tuple[Runs, list[dict], list[int]]:
    """The runs every table, plot and verdict use: the seeds where every method has a valid (not collapsed) run, so
    a mean in a table is over the same pairs as the verdict. With no such seed yet, each method's valid runs (there
    is no verdict then). Returns them, the runs left out with why, and the paired seeds."""
    common = set.intersection(*(set(valid[m]) for m in methods)) if methods else set()
    if not common:
        return valid, [{"method": m, "seed": s, "reason": "collapsed"} for m, s in sorted(collapsed)], []
    excluded = []
    for m in methods:
        for s in sorted(set(valid[m]) - common):
            partners = [o for o in methods if o != m and s not in valid[o]]
            why = ", ".join(f"{o} {'collapsed' if (o, s) in collapsed else 'has no run'}" for o in partners)
            excluded.append({"method": m, "seed": s, "reason": f"unpaired: {why} at this seed"})
    excluded += [{"method": m, "seed": s, "reason": "collapsed"} for m, s in sorted(collapsed)]
    return {m: {s: valid[m][s] for s in sorted(common)} for m in methods}, excluded, sorted(common)


def build_comparison(output_dir: str | Path, reference: str | None = None, seed: int = 0,
                     supporting_evidence: bool = True) -> ComparisonResult:
    """Statistics, verdict and efficiency from the run files; every method against `reference` (default: the
    `reference` setting the runs recorded). `supporting_evidence=False` leaves out ASO, which costs ~6 s a
    comparison and never enters the verdict (the decision-rule simulation writes thousands of folders)."""
    runs, base = load_runs(output_dir)
    settings = _experiment_settings(Path(output_dir))
    primary, margin = settings["primary_metric"], settings["equivalence_margin"]
    reference = reference or settings["reference"]
    collapsed = [{"method": m, "seed": s} for m, by_seed in sorted(runs.items()) for s, r in sorted(by_seed.items())
                 if is_collapsed(r.test)]
    for c in collapsed:
        log.warning("%s seed %d predicts one class for every test example: excluded from the statistics",
                    c["method"], c["seed"])
    bad = {(c["method"], c["seed"]) for c in collapsed}
    valid = {m: {s: r for s, r in by_seed.items() if (m, s) not in bad} for m, by_seed in runs.items()}
    methods = sorted(runs, key=lambda m: (m != reference, m))
    used, excluded, paired_seeds = paired_runs(valid, bad, methods)
    sources = sorted({s for by_seed in runs.values() for r in by_seed.values() for s in r.test["per_source"]})
    first = next(iter(next(iter(runs.values())).values()))
    labels = first.labels
    mixed = sorted({tuple(r.labels) for by_seed in runs.values() for r in by_seed.values()})
    if len(mixed) > 1:
        raise UserError(f"{output_dir}: runs predict different classes ({' vs '.join(map(str, mixed))}); they "
                        "cannot be compared")
    held_out = held_out_sources(runs, output_dir)
    groups = metric_groups(sources, labels, bool(held_out))
    primary_key = primary_metric_key(primary, first, groups, output_dir)
    keys = [k for g in groups.values() for k in g]
    per_method = {m: {k.name: describe([v for _, v in sorted(scores(used[m], k).items())], seed) for k in keys}
                  for m in methods}
    others = [m for m in methods if m != reference] if reference in runs else []
    comparisons = {f"{m}_vs_{reference}": compare_methods(Path(output_dir), m, reference, used, keys, primary_key,
                                                          margin, len(others), seed, supporting_evidence, held_out)
                   for m in others}
    holm_verdicts(comparisons, margin)
    serving = read_serving(output_dir)
    eff = {m: efficiency(used[m] or runs[m]) for m in methods}
    for m in methods:  # with serving: true only, so a comparison without it writes what it always wrote
        if method_serving(serving, m):
            eff[m]["serving"] = method_serving(serving, m)
    n_runs = {m: len(used[m]) for m in methods}
    many = {}
    if len(methods) >= 3:  # which could be the best, and the Pareto front (analysis/many_methods.py)
        primary_scores = {m: scores(used[m], primary_key) for m in methods}
        best = possibly_best(Path(output_dir), methods, primary_scores, comparisons, primary_key, seed, held_out)
        many = {**({"possibly_best": best} if best else {}),
                "pareto": pareto(methods, per_method, eff, primary_key.name)}
    untrained = not_learned(Path(output_dir), runs, reference)
    fairness = fairness_checks(output_dir, methods, eff)
    trade_offs = gives_up(Path(output_dir), used, base, reference, others, primary_key, held_out, seed)
    return {
        "methods": methods, "labels": labels, "reference": reference, "primary_metric": primary,
        "equivalence_margin": margin,
        "n_runs": n_runs, "collapsed_runs": collapsed, "excluded_runs": excluded,
        "paired_seeds": paired_seeds,  # every table's and the verdict's
        "runs": {m: sorted(by_seed) for m, by_seed in sorted(runs.items())},  # every finished run read
        "flagged_runs": [{"method": m, "seed": s, "problems": r.health["problems"]}
                         for m, by_seed in sorted(runs.items()) for s, r in sorted(by_seed.items())
                         if (r.health or {}).get("problems")], "sources": sources,
        "metric_groups": {g: [k.name for k in ks] for g, ks in groups.items()},
        "per_method": per_method, "comparisons": comparisons, "efficiency": eff,
        "base": {"test": named_scores(base.test), "params": base.params} if base else None,
        "not_learned": untrained,  # runs showing signs of not having learned (analysis/learning_checks.py)
        "headline": headline(comparisons, eff, untrained, trade_offs, fairness),
        "summary": [summary_line(c, eff) for c in comparisons.values()],
        "ranking": ranking(comparisons, reference),
        "too_few_runs": any(n < MIN_PAIRS for n in n_runs.values()),
        "model_name": first.model_name,
        "base_is_classifier": bool(base),
        "environment": first.environment or {},
        # with held-out sources or drift: what each method gives up (analysis/gives_up.py)
        **({"held_out_sources": held_out} if held_out else {}), **({"gives_up": trade_offs} if trade_offs else {}),
        **({"serving": {k: v for k, v in serving.items() if k != "methods"}} if serving else {}),
        # search edges, tuning saturation, short budgets (analysis/fairness_checks.py), when there is any
        **({"fairness": fairness} if fairness else {}),
        **many,
    }


def holm_verdicts(comparisons: dict, margin: float | None) -> None:
    """With several methods against the reference, each verdict again at the level of its Holm step (in place): the
    first pass (Bonferroni) gave every verdict's p, which orders the steps."""
    if len(comparisons) < 2:
        return
    family = holm_family(comparisons)
    for name, c in comparisons.items():
        prim = c["primary"]
        prim["verdict"] = decide(c["a"], c["b"], c["primary_metric"], prim, prim.get("test_level"), margin,
                                 comparisons=len(comparisons), family=family.get(name))


def restate_verdicts(cmp: ComparisonResult) -> ComparisonResult:
    """The verdicts (and headline) recomputed from a comparison's stored paired statistics: per-pair differences
    and the test-set bootstrap are all the verdict reads, so a statistics change reaches results whose run files
    are not at hand (a published copy)."""
    for per in cmp["per_method"].values():  # the per-method intervals as the current code labels them (t)
        for key, summary in per.items():
            if summary.get("values"):
                per[key] = describe(summary["values"])
    for c in cmp["comparisons"].values():
        prim = c["primary"]
        prim["verdict"] = decide(c["a"], c["b"], c["primary_metric"], prim, prim.get("test_level"),
                                 cmp.get("equivalence_margin"), comparisons=len(cmp["comparisons"]))
    holm_verdicts(cmp["comparisons"], cmp.get("equivalence_margin"))
    cmp["ranking"] = ranking(cmp["comparisons"], cmp["reference"])
    cmp["headline"] = headline(cmp["comparisons"], cmp["efficiency"], cmp.get("not_learned"), cmp.get("gives_up"),
                               cmp.get("fairness"))
    cmp["summary"] = [summary_line(c, cmp["efficiency"]) for c in cmp["comparisons"].values()]
    return cmp


def write_comparison(output_dir: str | Path, supporting_evidence: bool = True) -> ComparisonResult:
    """The report's first stage: build the comparison from the run files and write comparison.json."""
    cmp = build_comparison(output_dir, supporting_evidence=supporting_evidence)
    write_json(Layout(output_dir).comparison, cmp)
    return cmp
