"""The sweep report: how the paired verdict moves with the swept key(s), from the point folders alone.

Writes `sweep.json`, `plots/sweep_*.png`, `sweep_report.md` and a self-contained
`sweep_report.html`. Each point's numbers come from its own `comparison.json` (rebuilt
first when `rebuild` is asked, as `report --results SWEEP_DIR` does), so the sweep report
and the point reports can never disagree.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from ..budgets import budget_text
from ..data.sources import display_name
from ..layout import Layout
from ..utils.io import atomic_write_text, write_json
from ..errors import UserError
from .rebuild import rebuild_plan, restate_report
from .render import render_html, render_markdown
from .report import build_report
from .report_blocks import Block
from .run_files import read_json
from .sweep_plots import make_sweep_plots
from ..metric_names import DEFAULT_METRIC
from ..sweep_grid import fmt_value, grid_points, point_label, point_name
from .result_types import SweepPoint, SweepSummary

log = logging.getLogger(__name__)

SECTIONS = {"answer": "Answer", "points": "Verdict per point", "plots": "Plots", "sources": "Per source",
            "cost": "Cost", "setup": "Setup", "reproduce": "Reproduce"}


def is_sweep_dir(path: Path) -> bool:
    layout = Layout(path)
    return (layout.points.is_dir() or layout.sweep_summary.is_file()) and bool(_sweep_config(path).get("sweep"))


def _sweep_config(sweep_dir: Path) -> dict:
    path = Layout(sweep_dir).config
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _stat(s: dict | None) -> dict | None:
    if not s or s.get("mean") is None:
        return None
    return {k: s.get(k) for k in ("mean", "std", "ci_low", "ci_high", "n")}


def point_summary(values: dict, name: str, cmp: dict) -> SweepPoint:
    """What the sweep needs from one point's comparison.json."""
    primary = cmp["primary_metric"]
    methods = {}
    for m in cmp["methods"]:
        per, eff = cmp["per_method"][m], cmp["efficiency"][m]
        methods[m] = {
            "n_runs": cmp["n_runs"][m],
            "primary": _stat(per.get(primary)),
            "per_source": {s: _stat(per.get(f"{primary}_{s}")) for s in cmp["sources"] if f"{primary}_{s}" in per},
            "train_seconds": eff["train_seconds"]["mean"],
            "peak_rss_mb": eff["peak_rss_mb"],
            "peak_rss_above_baseline_mb": eff.get("peak_rss_above_baseline_mb"),
            "peak_cuda_mb": eff.get("peak_cuda_mb"),
            "trainable_params": eff["trainable_params"],
            "epochs_run": eff.get("epochs_run"),
            "steps": eff.get("steps"),
            "budget": eff.get("budget"),  # declared, or None: each method trained its own num_epochs
        }
    comparisons = {}
    for key, c in cmp["comparisons"].items():
        p, v = c["primary"], c["primary"]["verdict"]
        comparisons[key] = {"a": c["a"], "b": c["b"], "n_pairs": p["n_pairs"], "diff_mean": p["diff_mean"],
                            "ci_low": v["ci_low"], "ci_high": v["ci_high"], "t_p": p["t_p"], "tost_p": v["tost_p"],
                            "kind": v["kind"], "text": v["text"], "detectable": v.get("detectable")}
    g = cmp.get("gives_up") or {}
    gives_up = {key: [{k: r.get(k) for k in ("figure", "metric", "diff_mean", "ci_low", "ci_high", "p_holm",
                                              "detected")} for r in rows]
                for key, rows in (g.get("comparisons") or {}).items() if rows}
    return {"values": values, "name": name, "folder": str(Layout(".").point_dir(name)), "methods": methods,
            "comparisons": comparisons, "sources": cmp["sources"],
            **({"held_out": g["held_out"]} if g.get("held_out") else {}),
            **({"gives_up": gives_up} if gives_up else {})}


def verdict_label(c: dict, margin: float | None) -> str:
    return {"better": f"{c['a']} better", "worse": f"{c['b']} better",
            "equivalent": f"equivalent (within ±{margin:g})" if margin else "equivalent",
            "inconclusive": "no difference detected", "too_few": "too few pairs: no verdict"}[c["kind"]]


def answer_lines(summary: dict) -> list[str]:
    """Where (if anywhere) the verdict changes along the first key, for each value of the second key. A point with
    too few pairs has no verdict: it is named as such, never counted as a change."""
    keys, points, margin = summary["keys"], summary["points"], summary["equivalence_margin"]
    first, rest = keys[0], keys[1:]
    lines = []
    for name in summary["comparisons"]:
        groups: dict[tuple, list[dict]] = {}
        for p in points:
            if name in p["comparisons"]:
                groups.setdefault(tuple(fmt_value(p["values"][k]) for k in rest), []).append(p)
        for fixed, all_pts in groups.items():
            a, b = all_pts[0]["comparisons"][name]["a"], all_pts[0]["comparisons"][name]["b"]
            where = "".join(f" at {k}={v}" for k, v in zip(rest, fixed))
            pts = [p for p in all_pts if p["comparisons"][name]["kind"] != "too_few"]
            too_few = [p for p in all_pts if p["comparisons"][name]["kind"] == "too_few"]
            few = ("; no verdict yet (too few pairs) at " + ", ".join(
                f"{first}={fmt_value(p['values'][first])} ({p['comparisons'][name]['n_pairs']} pairs)"
                for p in too_few)) if too_few else ""
            if not pts:
                lines.append(f"{a} vs {b}{where}: no point has enough pairs for a verdict yet{few}.")
                continue
            labels = [verdict_label(p["comparisons"][name], margin) for p in pts]
            xs = [fmt_value(p["values"][first]) for p in pts]
            runs: list[tuple[str, list[str]]] = []
            for label, x in zip(labels, xs):
                if runs and runs[-1][0] == label:
                    runs[-1][1].append(x)
                else:
                    runs.append((label, [x]))
            if len(runs) == 1:
                text = (f"{a} vs {b}{where}: the verdict is the same at every {first} with a verdict "
                        f"({', '.join(xs)}): {labels[0]}{few}.")
            else:
                text = (f"{a} vs {b}{where}: the verdict changes with {first}: "
                        + "; ".join(f"{label} at {first}={', '.join(group)}" for label, group in runs) + f"{few}.")
            d0, d1 = pts[0]["comparisons"][name], pts[-1]["comparisons"][name]
            if len(pts) > 1:
                text += (f" The mean paired difference {a} - {b} in {summary['primary_metric']} goes from "
                         f"{d0['diff_mean']:+.4f} at {first}={xs[0]} to {d1['diff_mean']:+.4f} at {first}={xs[-1]}.")
            lines.append(text)
    if lines:
        return lines
    if not points:
        return ["No point has finished runs yet."]
    return [f"No point has runs of the reference method ({summary.get('reference', 'full')}) and another method to "
            "compare it with."]


def _point_plans(sweep_dir: Path, grid: dict) -> dict[str, str]:
    """How each point of the grid is rebuilt ('runs', 'restate' or 'missing'), checked for every point before
    anything is written: a rebuild never drops a point or a run that sweep.json or a point's comparison.json holds."""
    plans = {}
    for values in grid_points(grid):
        name = point_name(values)
        folder = Layout(sweep_dir).point_dir(name)
        if not Layout(folder).finished_runs() and not Layout(folder).comparison.is_file():
            plans[name] = "missing"
        else:
            plans[name] = rebuild_plan(folder)  # refuses, naming the runs, when the point lost some
    summary_path = Layout(sweep_dir).sweep_summary
    if summary_path.is_file():
        previous = read_json(summary_path)
        had = [p["name"] for p in previous.get("points", []) if isinstance(p, dict) and "name" in p]
        lost = [n for n in had if plans.get(n) == "missing"]
        if lost:
            raise UserError(f"'{sweep_dir}': sweep.json holds point(s) {', '.join(lost)}, whose folders under "
                            f"{Layout(sweep_dir).points} have neither run files nor a comparison.json; rebuilding "
                            "would drop them: restore those folders, or rerun the sweep (nothing was changed)")
    return plans


def collect(sweep_dir: Path, rebuild: bool = False) -> SweepSummary:
    config = _sweep_config(sweep_dir)
    grid = config.get("sweep") or {}
    if not grid:
        raise UserError(f"{sweep_dir}/config.yaml names no sweep grid")
    keys = list(grid)
    plans = _point_plans(sweep_dir, grid)
    points, missing = [], []
    for values in grid_points(grid):
        name = point_name(values)
        folder = Layout(Layout(sweep_dir).point_dir(name))
        if plans[name] == "missing" or (not rebuild and not folder.comparison.is_file()):
            missing.append(name)
            continue
        if rebuild:
            build_report(folder.root) if plans[name] == "runs" else restate_report(folder.root)
        points.append(point_summary(values, name, read_json(folder.comparison)))
    first_cmp = read_json(Layout(sweep_dir / points[0]["folder"]).comparison) if points else {}
    summary = {
        "kind": "sweep", "keys": keys, "grid": grid, "reference": first_cmp.get("reference", "full"),
        "primary_metric": config.get("primary_metric", DEFAULT_METRIC),
        "equivalence_margin": config.get("equivalence_margin"),
        "methods": list(points[0]["methods"]) if points else list(config.get("methods", [])),
        "comparisons": sorted({n for p in points for n in p["comparisons"]}),
        "sources": sorted({s for p in points for s in p["sources"]}),
        "num_runs": config.get("num_runs"), "model_name": config.get("model_name"),
        "data_source": config.get("data_source"),
        "environment": first_cmp.get("environment", {}),
        "points": points, "missing_points": missing,
    }
    summary["answer"] = answer_lines(summary)
    return summary


def _ci_text(s: dict | None) -> str:
    if not s:
        return "–"
    txt = f"{s['mean']:.4f}"
    if s.get("ci_low") is not None:
        txt += f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
    return txt


def gives_up_per_point(s: dict) -> list[Block]:
    """Each point's "What each method gives up" rows (out of domain, in domain, drift), as its own report states
    them: a leave-one-source-out sweep reads its out-of-domain difference source by source here."""
    blocks = []
    for name in s["comparisons"]:
        rows = [["point", "held out", "figure", "difference [95% CI]", "Holm-adjusted p", "detected"]]
        for p in s["points"]:
            for r in (p.get("gives_up") or {}).get(name, []):
                ci = f" [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]" if r["ci_low"] is not None else ""
                diff = "–" if r["diff_mean"] is None else f"{r['diff_mean']:+.4f}{ci}"
                rows.append([point_label(p["values"]), ", ".join(display_name(x) for x in p.get("held_out") or [])
                             or "–", r["figure"], diff, "–" if r["p_holm"] is None else f"{r['p_holm']:.3g}",
                             "too few pairs" if r["p_holm"] is None else "yes" if r["detected"] else "no"])
        if len(rows) > 1:
            blocks.append(Block("table", rows, caption=f"{name.replace('_vs_', ' vs ')}: what each method gives up, "
                                                       "per point (intervals and tests as each point's report "
                                                       "states them; not detected is not evidence of no difference)"))
    return blocks


def build_blocks(sweep_dir: Path, s: dict, plots: dict[str, Path]) -> list[Block]:
    b: list[Block] = [Block("h2", SECTIONS["answer"], "answer")]
    b += [Block("p", line) for line in s["answer"]]
    if s["missing_points"]:
        b.append(Block("p", f"Not run yet (rerun the sweep to continue): {', '.join(s['missing_points'])}."))

    b.append(Block("h2", SECTIONS["points"], "points"))
    m = s["methods"]
    for name in s["comparisons"]:
        rows = [["point", "pairs"] + [f"{x} {s['primary_metric']} [95% CI]" for x in m]
                + ["difference [95% CI, seed + test noise]", "verdict"]]
        for p in s["points"]:
            c = p["comparisons"].get(name)
            if not c:
                continue
            ci = f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c["ci_low"] is not None else ""
            rows.append([point_label(p["values"]), str(c["n_pairs"])]
                        + [_ci_text(p["methods"][x]["primary"]) for x in m]
                        + [f"{c['diff_mean']:+.4f}{ci}", verdict_label(c, s["equivalence_margin"])])
        b.append(Block("table", rows, caption=name.replace("_vs_", " vs ")))
    b.append(Block("list", [f"{point_label(p['values'])}: {c['text']}" for p in s["points"]
                            for c in p["comparisons"].values()], caption="Verdicts in full"))
    b += gives_up_per_point(s)

    b.append(Block("h2", SECTIONS["plots"], "plots"))
    captions = {"sweep_primary": f"{s['primary_metric']} per method (95% CI over seeds) and the paired difference "
                                 "(95% CI over seed and test-set noise) against the swept key",
                "sweep_sources": "Per source: each method's score against the swept key",
                "sweep_cost": "Training time and peak memory against the swept key"}
    for key, path in plots.items():
        b.append(Block("img", path, caption=captions.get(key, key)))

    b.append(Block("h2", SECTIONS["sources"], "sources"))
    rows = [["point", "method"] + [display_name(x) for x in s["sources"]]]
    for p in s["points"]:
        for x in m:
            per = p["methods"][x]["per_source"]
            rows.append([point_label(p["values"]), x] + [_ci_text(per.get(src)) for src in s["sources"]])
    b.append(Block("table", rows, caption=f"{s['primary_metric']} per source, mean [95% CI] over seeds"))

    b.append(Block("h2", SECTIONS["cost"], "cost"))
    rows = [["point", "method", "trainable params", "budget (what the runs took)", "train seconds", "peak RSS MB",
             "RSS above baseline MB", "peak CUDA MB"]]
    for p in s["points"]:
        for x in m:
            e = p["methods"][x]

            def num(v, digits=0):
                return "–" if v is None else f"{v:,.{digits}f}"

            rows.append([point_label(p["values"]), x, f"{e['trainable_params']:,}", budget_text(e),
                         num(e["train_seconds"], 1), num(e["peak_rss_mb"]), num(e["peak_rss_above_baseline_mb"]),
                         num(e["peak_cuda_mb"])])
    b.append(Block("table", rows, caption="Mean per run over seeds"))

    b.append(Block("h2", SECTIONS["setup"], "setup"))
    env = s.get("environment", {})
    b.append(Block("list", [
        f"Model: {s['model_name']}; data source: {s['data_source']}; methods: {', '.join(m)}; "
        f"paired seeds per point: {s['num_runs']}",
        "Grid: " + "; ".join(f"{k} = {', '.join(map(fmt_value, v))}" for k, v in s["grid"].items()),
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "Point reports: " + ", ".join(f"{p['folder']}/report.md" for p in s["points"]) + " (each with a "
        "self-contained report.html beside it)",
    ]))
    config_path = Layout(sweep_dir).config
    if config_path.is_file():
        b.append(Block("code", config_path.read_text(encoding="utf-8"), caption="Resolved configuration"))
    b.append(Block("h2", SECTIONS["reproduce"], "reproduce"))
    b.append(Block("code", f"finetune-compare sweep --config {config_path}\n"
                           f"finetune-compare report --results {sweep_dir}"))
    return b


def build_sweep_report(sweep_dir: str | Path, rebuild: bool = False) -> SweepSummary:
    """Collect the points, then write sweep.json, the plots and the two reports; returns sweep.json's content."""
    sweep_dir = Path(sweep_dir)
    summary = collect(sweep_dir, rebuild)
    plots = make_sweep_plots(sweep_dir, summary) if summary["points"] else {}
    summary["plots"] = {k: str(v.relative_to(sweep_dir)) for k, v in plots.items()}
    layout = Layout(sweep_dir)
    write_json(layout.sweep_summary, summary)
    blocks = build_blocks(sweep_dir, summary, plots)
    title = "finetune-compare sweep report"
    atomic_write_text(layout.sweep_report_md, render_markdown(blocks, sweep_dir, title))
    atomic_write_text(layout.sweep_report_html, render_html(blocks, title, SECTIONS))
    log.info("sweep report: %s", layout.sweep_report_html)
    return summary
