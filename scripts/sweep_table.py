"""Print a sweep's summary table (Markdown) from its sweep.json: what docs/results/README.md publishes.

    python scripts/sweep_table.py docs/results/minilm-size-sweep/sweep.json

tests/test_published_results.py regenerates it from the committed JSON and checks the docs hold it.
"""

import json
import sys
from pathlib import Path

from finetune_compare.analysis.sweep_report import verdict_label


def _ci(s: dict | None, sign: str = "") -> str:
    if not s:
        return "–"
    txt = f"{s['mean']:{sign}.4f}"
    return txt + (f" [{s['ci_low']:{sign}.4f}, {s['ci_high']:{sign}.4f}]" if s.get("ci_low") is not None else "")


def table(summary: dict) -> str:
    metric, methods = summary["primary_metric"], summary["methods"]
    rows = ["| " + " | ".join([*summary["keys"], "pairs", *(f"{m} {metric} [95% CI]" for m in methods),
                               "difference [95% CI]", "verdict", *(f"{m} train s" for m in methods)]) + " |",
            "|" + "---|" * (len(summary["keys"]) + 3 + 2 * len(methods))]
    for p in summary["points"]:
        for c in p["comparisons"].values():
            diff = {"mean": c["diff_mean"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]}
            kind = verdict_label(c, summary.get("equivalence_margin"))  # as the sweep report words it
            cells = [*(str(p["values"][k]) for k in summary["keys"]), str(c["n_pairs"]),
                     *(_ci(p["methods"][m]["primary"]) for m in methods), _ci(diff, "+"), kind,
                     *(f"{p['methods'][m]['train_seconds']:.0f}" for m in methods)]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
