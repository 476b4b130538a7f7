"""The report's blocks for three or more methods: the Holm-corrected ranking against the reference, which methods
cannot be told apart from the best, and the Pareto table (analysis/many_methods.py)."""

from __future__ import annotations

from .report_blocks import Block
from .report_tables import ci_text, format_value

KINDS = {"better": "better", "worse": "worse", "equivalent": "equivalent", "inconclusive": "no difference detected",
         "too_few": "too few pairs", "reference": "–"}


def ranking_blocks(cmp: dict) -> list[Block]:
    """All methods against the reference, with the Holm family every verdict here is made in."""
    m = len(cmp["comparisons"])
    rows = [["rank", "method", f"- {cmp['reference']} ({cmp['primary_metric']})", "interval (its Holm step's level)",
             "p (that interval's test)", f"Holm-adjusted p (family of {m})", "verdict"]]
    for i, r in enumerate(cmp["ranking"], 1):
        level = f"{r['confidence']:.1%}: " if r.get("confidence") else ""
        rows.append([str(i), r["method"], "0 (reference)" if r["kind"] == "reference" else format_value(r["diff_mean"]),
                     (level + ci_text(r["ci_low"], r["ci_high"])) if r["ci_low"] is not None else "–",
                     format_value(r["p"], 3), format_value(r["p_adjusted"], 3), KINDS[r["kind"]]])
    return [Block("p", f"{m} methods are compared with the reference {cmp['reference']}: the claims of a difference "
                       f"are Holm-corrected over these {m} comparisons (family-wise error 5%). Holm's step i tests "
                       f"at 0.05/({m} - i + 1) in the order of the p-values and stops at the first it cannot reject; "
                       "each interval is at 1 minus the level of the step that decided it, so an interval excludes "
                       "0 exactly when a difference is claimed. The intervals are not simultaneous (their joint "
                       f"coverage is not claimed). Equivalence is Bonferroni-corrected (TOST at 0.05/{m}). Ranked "
                       "by the mean paired difference."),
            Block("table", rows, caption="Ranking against the reference")]


def possibly_best_blocks(cmp: dict) -> list[Block]:
    best = cmp.get("possibly_best")
    if not best:
        return []
    rows = [["method", "could be the best", "the other it is closest to losing to",
             "mean difference", f"one-sided upper bound ({1 - best['one_sided_level']:.1%})"]]
    order = sorted(best["methods"].items(), key=lambda kv: -cmp["per_method"][kv[0]][cmp["primary_metric"]]["mean"])
    for m, r in order:
        rows.append([m, "yes" if r["in_set"] else "no: shown worse", r["worst"], f"{r['diff_mean']:+.4f}",
                     f"{r['upper']:+.4f}"])
    k = len(best["methods"])
    inside = [m for m, r in order if r["in_set"]]
    return [Block("p", f"Which methods cannot be told apart from the best on {cmp['primary_metric']}: "
                       f"{', '.join(inside)}. Gupta's subset selection: a method stays when, against every other "
                       f"method, the one-sided upper bound of its paired difference is at least 0 (at "
                       f"{best['one_sided_level']:.4g} each, Bonferroni over the {k - 1} others; the verdict's "
                       "standard error: the pairs' spread plus the test-set noise they share, counted once). The true "
                       "best method is in this set with at least 95% probability. It takes the test examples as "
                       "independent unless clusters were declared; a method outside it was shown worse than the "
                       "method named beside it."),
            Block("table", rows, caption="Cannot be told apart from the best")]


def pareto_blocks(cmp: dict) -> list[Block]:
    fronts = cmp.get("pareto")
    if not fronts:
        return []
    primary = cmp["primary_metric"]
    keys = list(fronts)
    rows = [["method", f"{primary} (mean [95% t-interval over seeds])",
             *[f"{fronts[k]['label']}" + (f" ({fronts[k]['unit']})" if fronts[k]["unit"] else "") for k in keys],
             "on the front for"]]
    for m in cmp["methods"]:
        first = fronts[keys[0]]["methods"][m]
        score = f"{first['mean']:.4f}" + (f" {ci_text(first['ci_low'], first['ci_high'])}"
                                          if first["ci_low"] is not None else "")
        costs = [format_value(fronts[k]["methods"][m]["cost"], 1) if not isinstance(fronts[k]["methods"][m]["cost"],
                                                                                    int)
                 else format_value(fronts[k]["methods"][m]["cost"]) for k in keys]
        on = [fronts[k]["label"].split(" (")[0] for k in keys if fronts[k]["methods"][m]["on_front"]]
        rows.append([m, score, *costs, ", ".join(on) or "–"])
    return [Block("p", "Pareto front of quality against each cost: a method is on the front for a cost when no other "
                       "method has a higher or equal mean score at a lower or equal cost (one of the two strictly). "
                       "It is judged on the means over the seeds: where the intervals overlap, the order of the "
                       "scores is not established (the table above says which methods could be the best). Costs "
                       "are means over the runs, with each method's own budget (the efficiency table states it)."),
            Block("table", rows, caption="Quality against cost (Pareto)")]
