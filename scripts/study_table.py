"""Print a tuned comparison's two published tables (Markdown) from its comparison.json: each method's tuned
settings, budget, scores and cost; then the paired differences, overall and per source, with their tests. A study
with held-out sources gets its in-domain and out-of-domain scores, and the differences of what each method gives
up (out-of-domain transfer, drift), instead.

    python scripts/study_table.py docs/results/minilm-tuned-700/comparison.json
    python scripts/study_table.py docs/results/study-regret/comparison.json

tests/test_published_results.py regenerates both from the committed JSON and checks docs/results holds them.
"""

import json
import sys
from pathlib import Path

from finetune_compare.analysis.verdict import confidence_label
from finetune_compare.budgets import budget_text
from finetune_compare.data.sources import display_name


def _ci(mean: float, low: float | None, high: float | None, sign: str = "") -> str:
    txt = f"{mean:{sign}.4f}"
    return txt + (f" [{low:{sign}.4f}, {high:{sign}.4f}]" if low is not None else "")


def _stat(s: dict) -> str:
    return _ci(s["mean"], s.get("ci_low"), s.get("ci_high"))


def _settings(params: dict) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}"
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)
    return ", ".join(f"{k} {fmt(v)}" for k, v in sorted(params.items())) or "–"


def method_table(cmp: dict) -> str:
    metric, sources, tuning = cmp["primary_metric"], cmp["sources"], cmp.get("tuning") or {}
    head = ["method", "tuned settings (best trial on validation)", "budget", f"{metric} [95% CI]",
            *(display_name(s) for s in sources), "train s", "trainable params"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in cmp["methods"]:
        per, eff = cmp["per_method"][m], cmp["efficiency"][m]
        cells = [m, _settings((tuning.get(m) or {}).get("best_params") or {}), budget_text(eff), _stat(per[metric]),
                 *(_stat(per[f"{metric}_{s}"]) for s in sources), f"{eff['train_seconds']['mean']:.0f}",
                 f"{eff['trainable_params']:,}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def difference_table(cmp: dict) -> str:
    """The primary difference with the verdict's interval (seed, data-draw and test-set noise), then each
    source's with its t-interval over seeds (unadjusted) and its p Holm-adjusted over the comparison's whole
    family of secondary metrics (accuracy, per-class F1, per-source scores)."""
    metric = cmp["primary_metric"]
    rows = ["| comparison | on | pairs | difference [95% CI] | p | Holm-adjusted p | verdict |",
            "|---|---|---|---|---|---|---|"]
    for key, c in cmp["comparisons"].items():
        name = f"{c['a']} - {c['b']}"
        p, v = c["primary"], c["primary"]["verdict"]
        rows.append(f"| {name} | {metric} (all sources; primary) | {p['n_pairs']} | "
                    f"{_ci(p['diff_mean'], v['ci_low'], v['ci_high'], '+')} | {v['p']:.3g} | – | {v['kind']} |")
        for s in cmp["sources"]:
            sec = c["secondary"][f"{metric}_{s}"]
            rows.append(f"| {name} | {metric}, {display_name(s)} | {sec['n_pairs']} | "
                        f"{_ci(sec['diff_mean'], sec['t_ci_low'], sec['t_ci_high'], '+')} | {sec['t_p']:.3g} | "
                        f"{sec['p_holm']:.3g} | – |")
    return "\n".join(rows)


def held_out_method_table(cmp: dict) -> str:
    """Per method: its tuned settings, in-domain and out-of-domain scores, each source's, and its cost."""
    tuning = cmp.get("tuning") or {}
    held = cmp["held_out_sources"]
    inside = [s for s in cmp["sources"] if s not in held]
    head = ["method", "tuned settings (best trial on validation)", "in-domain macro_f1 [95% CI]",
            f"out-of-domain ({', '.join(display_name(s) for s in held)}) macro_f1 [95% CI]",
            *(display_name(s) for s in inside), "train s", "trainable params"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in cmp["methods"]:
        per, eff = cmp["per_method"][m], cmp["efficiency"][m]
        cells = [m, _settings((tuning.get(m) or {}).get("best_params") or {}), _stat(per["macro_f1_in_domain"]),
                 _stat(per["macro_f1_out_of_domain"]), *(_stat(per[f"macro_f1_{s}"]) for s in inside),
                 f"{eff['train_seconds']['mean']:.0f}", f"{eff['trainable_params']:,}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def held_out_difference_table(cmp: dict) -> str:
    """Per comparison: the primary difference with the verdict's interval at its Holm step's level, then what the
    method gives up (out-of-domain score, drift) with their intervals and their p Holm-adjusted within that family."""
    rows = ["| comparison | on | pairs | difference [CI] | p | Holm-adjusted p | verdict |",
            "|---|---|---|---|---|---|---|"]
    for key, c in cmp["comparisons"].items():
        name = f"{c['a']} - {c['b']}"
        p, v = c["primary"], c["primary"]["verdict"]
        level = confidence_label(v.get("confidence", 0.95))
        holm = f"{v['p_adjusted']:.3g}" if v.get("p_adjusted") is not None else "–"
        rows.append(f"| {name} | {cmp['primary_metric']} (primary; {level} CI) | {p['n_pairs']} | "
                    f"{_ci(p['diff_mean'], v['ci_low'], v['ci_high'], '+')} | {v['p']:.3g} | {holm} | {v['kind']} |")
        for row in (cmp.get("gives_up") or {}).get("comparisons", {}).get(key, []):
            if row["kind"] == "in_domain":
                continue  # the primary row above
            if row["diff_mean"] is None:  # a figure no pair could measure
                continue
            p_text = "–" if row["p"] is None else f"{row['p']:.3g}"
            holm_text = "–" if row["p_holm"] is None else f"{row['p_holm']:.3g}"
            rows.append(f"| {name} | {row['figure']} (95% CI) | {row['n_pairs']} | "
                        f"{_ci(row['diff_mean'], row['ci_low'], row['ci_high'], '+')} | {p_text} | {holm_text} | "
                        f"{'detected' if row['detected'] else 'not detected'} |")
    return "\n".join(rows)


def tables(cmp: dict) -> str:
    if cmp.get("held_out_sources"):
        return held_out_method_table(cmp) + "\n\n" + held_out_difference_table(cmp)
    return method_table(cmp) + "\n\n" + difference_table(cmp)


if __name__ == "__main__":
    print(tables(json.loads(Path(sys.argv[1]).read_text())))
