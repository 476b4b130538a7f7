"""The report's "What each method gives up" section, with held-out sources: in-domain and out-of-domain scores as
method - reference, and each method's change from the base checkpoint on the held-out sources."""

from __future__ import annotations

from pathlib import Path

from ..data.sources import display_name
from .gives_up import out_of_domain_row
from .report_blocks import Block
from .report_tables import INDEPENDENCE, ci_text, format_value, mean_ci


def _row(name: str, r: dict) -> list[str]:
    tested = r.get("p") is not None
    return [name, format_value(r["diff_mean"]), ci_text(r["ci_low"], r["ci_high"]), format_value(r["p"], 3),
            format_value(r.get("p_holm"), 3),
            ("yes" if r["detected"] else "no (not evidence of no difference)") if tested else "too few pairs"]


HEADER = ["figure", "difference (mean)", "95% interval", "p (that interval's test)", "Holm-adjusted p", "detected"]


def gives_up_blocks(cmp: dict, plots: dict[str, Path]) -> list[Block]:
    g = cmp["gives_up"]
    b: list[Block] = []
    if "gives_up" in plots:
        b.append(Block("img", plots["gives_up"], caption="What each method gives up: every figure as a difference "
                                                         "with its 95% interval (forest plot)"))
    if g["held_out"]:
        b += _held_out_text(g)
    if g.get("drift"):
        b += _drift_text(g["drift"])
    b.append(Block("p", "Each table's p beside an interval is that interval's test; Holm adjusts within the table. "
                        "A figure is detected when its Holm-adjusted p < 0.05 (below 3 pairs nothing is tested); a "
                        "figure not detected is not evidence of no difference."))
    for name, rows in g["comparisons"].items():
        if not rows:
            continue
        a, ref = rows[0]["a"], rows[0]["b"]
        b.append(Block("table", [HEADER] + [_row(f"{r['figure']}: {a} - {ref}", r) for r in rows],
                       caption=f"{a} vs {ref}" + (f" ({g['metric']} for the scores)" if g["held_out"] else "")))
    for name, rows in (g.get("per_source") or {}).items():
        a, ref = rows[0]["a"], rows[0]["b"]
        b.append(Block("table", [HEADER] + [_row(f"{r['figure']}: {a} - {ref}", r) for r in rows],
                       caption=f"{a} vs {ref}, per source ({g['metric']}; Holm within this table; the interval over "
                               "each source's own test examples)"))
    forgetting = g.get("forgetting")
    if forgetting:
        held = ", ".join(display_name(s) for s in g["held_out"])
        b.append(Block("table", [HEADER] + [_row(f"{m}: change from base (base {forgetting['base']:.4f})", r)
                                            for m, r in forgetting["methods"].items()],
                       caption=f"Forgetting: each method's out-of-domain {g['metric']} minus the base checkpoint's "
                               f"(on {held})"))
        b.append(Block("p", _kept_sentence(g)))
    elif g["held_out"]:
        b.append(Block("p", "Forgetting is not measured: the base checkpoint does not already predict these "
                            "classes (no base row), so there is no skill of its own on the held-out sources to "
                            "keep or lose."))
    if g.get("drift"):
        b.append(Block("table", drift_table(g["drift"]), caption="Drift from the base model, per method (mean ± std "
                                                                 "over its runs [95% t-interval])"))
    if g["held_out"]:
        b.append(Block("p", INDEPENDENCE))
    return b


def _held_out_text(g: dict) -> list[Block]:
    held = ", ".join(display_name(s) for s in g["held_out"])
    return [Block("p", (
        f"Held out of training and validation: {held}, near-duplicate texts included (the test set keeps them). "
        f"In-domain scores are over the test examples of the sources trained on, out-of-domain scores over the "
        f"held-out ones, both in {g['metric']}. Each score figure is a paired difference over seeds; its interval "
        "is a t-interval over the pairs whose standard error adds the test-sampling variance the pairs share (a "
        "test-set bootstrap over the examples the figure is computed on: out-of-domain figures rest on fewer "
        "examples, so their intervals are wider). Model selection and every search used the validation split, "
        "which holds no held-out source."))]


def _drift_text(d: dict) -> list[Block]:
    return [Block("p", (
        f"Drift from the base model, per run: linear CKA between the base encoder's and the trained encoder's "
        f"representations (every layer's hidden states, mean-pooled over real tokens) of {d['probe_texts']} test "
        f"texts spread over the length-sorted test split, the same for every run and trained on by none (1.0: the "
        f"same representation up to rotation and scale); and intruder dimensions: of each weight matrix training changed (an adapter merged into it), the "
        f"top {d['top_k']} singular vectors whose highest cosine similarity to any singular vector of the base "
        f"matrix is below {d['epsilon']:g} (Shuttleworth et al. 2024). Between methods they are paired over seeds "
        "with a paired t-interval (seed noise only: the probe is fixed). CKA on one probe is one view of how far the "
        "representations moved, not a measure of forgetting by itself; intruder counts depend on k, epsilon and how "
        "many matrices a method changes (listed below)."))]


def drift_table(d: dict) -> list[list[str]]:
    methods = list(d["methods"])
    rows = [["", *methods]]
    for key, label in (("cka_last", "CKA, last layer"), ("cka_mean", "CKA, mean over layers"),
                       ("intruders_total", "intruder dimensions, total")):
        rows.append([label, *[mean_ci(d["methods"][m][key]) for m in methods]])
    types = sorted({t for m in methods for t in d["methods"][m]["intruders_per_layer_type"]})
    for t in types:
        rows.append([f"intruders: {t} (mean)", *[format_value(d["methods"][m]["intruders_per_layer_type"].get(t), 2)
                                                 for m in methods]])
    rows.append(["matrices changed (mean)", *[format_value(d["methods"][m]["matrices_changed"], 1) for m in methods]])
    rows.append(["drift seconds per run (mean)", *[format_value(d["methods"][m]["seconds"], 2) for m in methods]])
    return rows


def _kept_sentence(g: dict) -> str:
    """Which method kept more of what the checkpoint could do: the methods' changes from base differ by exactly
    their out-of-domain difference (one base score on one test set), so that row answers it."""
    parts = []
    for rows in g["comparisons"].values():
        r = out_of_domain_row(rows)
        a, ref = r["a"], r["b"]
        if r.get("p") is None:
            parts.append(f"{a} vs {ref}: too few pairs to say")
        elif r["detected"]:
            winner = a if r["diff_mean"] > 0 else ref
            parts.append(f"{winner} kept more of what the base checkpoint could do on the held-out sources "
                         f"({a} - {ref} = {r['diff_mean']:+.4f} {ci_text(r['ci_low'], r['ci_high'])}, "
                         f"Holm p = {r['p_holm']:.3g})")
        else:
            parts.append(f"{a} vs {ref}: no difference detected in what they kept ({r['diff_mean']:+.4f} "
                         f"{ci_text(r['ci_low'], r['ci_high'])}, Holm p = {r['p_holm']:.3g}; not evidence of no "
                         "difference)")
    return ("Two methods' changes from the one base score differ by exactly their out-of-domain difference, so "
            "they are compared on that row: " + "; ".join(parts) + ".")
