"""Print a tuned comparison's two published tables (Markdown) from its comparison.json: each method's tuned
settings, budget, scores and cost; then the paired differences, overall and per source, with their tests.

    python scripts/study_table.py docs/results/minilm-tuned-700/comparison.json

tests/test_published_results.py regenerates both from the committed JSON and checks docs/results holds them.
"""

import json
import sys
from pathlib import Path

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


if __name__ == "__main__":
    comparison = json.loads(Path(sys.argv[1]).read_text())
    print(method_table(comparison) + "\n\n" + difference_table(comparison))
