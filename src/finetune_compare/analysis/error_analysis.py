"""Error analysis from the run files: the most confidently wrong test examples per method and source, error
rates per source, and where the comparison's first method and its reference disagree (first shared seed)."""

from __future__ import annotations

from pathlib import Path

from ..layout import PREDICTIONS, Layout, seed_of
from .run_files import read_jsonl


def error_analysis(output_dir: Path, methods: list[str], top_k: int = 5) -> dict:
    """Most confidently wrong test examples per method and source, and method disagreements (first shared seed)."""
    seeds = [[seed_of(d) for d in Layout(output_dir).seed_dirs(m)] for m in methods]
    common = sorted(set(seeds[0]).intersection(*seeds[1:])) if seeds else []
    if not common:
        return {}
    seed = common[0]
    preds = {m: read_jsonl(Layout(output_dir).run_dir(m, seed) / PREDICTIONS) for m in methods}
    first = next((rows[0] for rows in preds.values() if rows), None)
    names = list(first["probabilities"]) if first else []  # the class names, in id order (as written)
    sources = sorted({r["source"] for rows in preds.values() for r in rows})
    wrong: dict = {}
    error_rate: dict = {}
    for m, rows in preds.items():
        wrong[m], error_rate[m] = {}, {}
        for s in sources:
            subset = [r for r in rows if r["source"] == s]
            errors = [r for r in subset if r["predicted"] != r["label"]]
            error_rate[m][s] = len(errors) / len(subset) if subset else 0.0
            errors.sort(key=lambda r: -r["probabilities"][names[r["predicted"]]])
            wrong[m][s] = [{"id": r["id"], "text": r["text"], "label": names[r["label"]],
                            "predicted": names[r["predicted"]],
                            "confidence": r["probabilities"][names[r["predicted"]]]} for r in errors[:top_k]]
    result = {"seed": seed, "sources": sources, "most_confident_errors": wrong, "error_rate": error_rate}
    if len(methods) >= 2:
        a, b = methods[1], methods[0]  # the comparison's order: the reference method first
        by_id = {r["id"]: r for r in preds[b]}
        disagree = [(r, by_id[r["id"]]) for r in preds[a] if r["id"] in by_id and r["predicted"] != by_id[r["id"]]["predicted"]]
        result["pair"] = [a, b]
        result["disagreement_rate"] = {
            s: sum(1 for ra, _ in disagree if ra["source"] == s) / max(1, sum(1 for r in preds[a] if r["source"] == s))
            for s in sources
        }
        # the disagreements where one of the two is right, most confident first
        disagree.sort(key=lambda p: -abs(p[0]["probabilities"][names[p[0]["predicted"]]]
                                         - p[1]["probabilities"][names[p[0]["predicted"]]]))
        result["disagreements"] = [
            {"id": ra["id"], "source": ra["source"], "text": ra["text"], "label": names[ra["label"]],
             a: names[ra["predicted"]], b: names[rb["predicted"]],
             f"{a}_confidence": ra["probabilities"][names[ra["predicted"]]],
             f"{b}_confidence": rb["probabilities"][names[rb["predicted"]]]}
            for ra, rb in disagree[: top_k * 3]
        ]
        result["n_disagreements"] = len(disagree)
    return result
