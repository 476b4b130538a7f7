"""Exports beside report.md, from the same comparison: `comparison.csv` (one row per method and paired seed, the runs
every table and the verdict use) and `comparison.tex` (the results table with the verdict's difference, for a
paper), both through pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..layout import Layout
from ..utils.io import atomic_write_text
from .verdict import confidence_label
from ..metric_names import OVERALL_METRICS as OVERALL


def paired_seeds(cmp: dict) -> list[int]:
    """The seeds every table and the verdict use (older comparison.json files: the first comparison's pairs)."""
    if cmp.get("paired_seeds") is not None:
        return list(cmp["paired_seeds"])
    first = next(iter(cmp.get("comparisons", {}).values()), None)
    return list(first["primary"]["seeds"]) if first else []


def runs_frame(cmp: dict) -> pd.DataFrame:
    """One row per method and paired seed: every metric of the tables, as the run recorded it (the tables' values
    are over these seeds, in this order); then one row, without scores, per run that failed on every attempt, so a
    method none of whose runs finished is still named. `status` says which a row is."""
    seeds = paired_seeds(cmp)
    keys = [k for group in cmp["metric_groups"].values() for k in group]
    drift = (cmp.get("gives_up") or {}).get("drift") or {}
    drift_keys = ["cka_last", "cka_mean", "intruders_total"] if drift else []
    rows = []
    for m in cmp["methods"]:
        values = {k: cmp["per_method"][m][k]["values"] for k in keys}
        per = (drift.get("methods") or {}).get(m)
        if per and all(len(per[k]["values"]) == len(seeds) for k in drift_keys):  # drift of the same paired runs
            values.update({k: per[k]["values"] for k in drift_keys})
        if any(len(v) != len(seeds) for v in values.values()):
            continue  # a method without a run at every paired seed (no pairs yet): nothing paired to export
        rows += [{"method": m, "seed": seed, **{k: v[i] for k, v in values.items()}, "status": "paired"}
                 for i, seed in enumerate(seeds)]
    rows += [{"method": f["method"], "seed": f["seed"], "status": f"failed: {f['error']}"}
             for f in cmp.get("failed_runs", [])]
    return pd.DataFrame(rows, columns=["method", "seed", *keys, *drift_keys, "status"])


def _caption(cmp: dict) -> str:
    n = len(paired_seeds(cmp))
    text = f"Test set, mean ± std over {n} paired seed{'' if n == 1 else 's'}"
    if cmp["comparisons"]:
        several = len(cmp["comparisons"]) > 1
        text += (f"; last rows: the verdict's difference on {cmp['primary_metric'].replace('_', ' ')} with its "
                 + ("interval at the level its row names (each Holm step's, over the comparisons with the reference)"
                    if several else "95\\% interval")
                 + " (seed, data-draw and test-set noise) and the verdict")
        if any((cmp.get("gives_up") or {}).get("comparisons", {}).values()):
            text += ("; then what each method gives up, each difference with its 95\\% interval as the report "
                     "states it (scores: seeds and test set; drift: seeds) and whether Holm-adjusted p < 0.05")
    missing = sorted({f["method"] for f in cmp.get("failed_runs", [])} - set(cmp["methods"]))
    if missing:
        text += (f"; not in the table: {', '.join(missing)} (every run failed; comparison.csv lists the failures)")
    return text


def _cell(s: dict) -> str:
    if s["mean"] is None:
        return "–"
    return f"{s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s["std"] is not None else "")


def _difference(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:+.4f}" + (f" [{low:+.4f}, {high:+.4f}]" if low is not None else "")


def results_frame(cmp: dict) -> pd.DataFrame:
    """Overall metrics per method (mean ± std over the paired seeds) and each method's difference to the reference
    on the primary metric with the verdict's interval (95%; with several methods its Holm step's level)."""
    rows = [{"metric": k.replace("_", " "), **{m: _cell(cmp["per_method"][m][k]) for m in cmp["methods"]}}
            for k in OVERALL]
    for c in cmp["comparisons"].values():
        v = c["primary"]["verdict"]
        level = confidence_label(v.get("confidence") or 0.95)
        rows.append({"metric": f"{c['a']} - {c['b']} ({c['primary_metric'].replace('_', ' ')}, {level} CI)",
                     c["a"]: _difference(c["primary"]["diff_mean"], v["ci_low"], v["ci_high"]), c["b"]: v["kind"]})
    for figures in ((cmp.get("gives_up") or {}).get("comparisons") or {}).values():  # what each method gives up
        for r in figures:
            found = "too few pairs" if r.get("p") is None else "detected" if r["detected"] else "not detected"
            rows.append({"metric": f"{r['a']} - {r['b']} ({r['metric'].replace('_', ' ')}, 95% CI)",
                         r["a"]: _difference(r["diff_mean"], r["ci_low"], r["ci_high"]), r["b"]: found})
    return pd.DataFrame(rows, columns=["metric", *cmp["methods"]]).fillna("")


def write_exports(output_dir: Path, cmp: dict) -> dict[str, Path]:
    layout = Layout(output_dir)
    csv_path, tex_path = layout.comparison_csv, layout.comparison_tex
    atomic_write_text(csv_path, runs_frame(cmp).to_csv(index=False))
    tex = results_frame(cmp).to_latex(index=False, escape=True, caption=_caption(cmp), label="tab:finetune-compare")
    atomic_write_text(tex_path, tex)  # (pandas escapes the cells, not the caption: it is written as LaTeX)
    return {"csv": csv_path, "tex": tex_path}
