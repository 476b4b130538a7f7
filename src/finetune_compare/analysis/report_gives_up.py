"""The report's "What each method gives up" section, with held-out sources: in-domain and out-of-domain scores as
method - reference, and each method's change from the base checkpoint on the held-out sources."""

from __future__ import annotations

from pathlib import Path

from ..data.sources import display_name
from .report_blocks import Block
from .report_tables import INDEPENDENCE, ci_text, format_value


def _row(name: str, r: dict) -> list[str]:
    tested = r.get("p") is not None
    return [name, format_value(r["diff_mean"]), ci_text(r["ci_low"], r["ci_high"]), format_value(r["p"], 3),
            format_value(r.get("p_holm"), 3),
            ("yes" if r["detected"] else "no (not evidence of no difference)") if tested else "too few pairs"]


HEADER = ["figure", "difference (mean)", "95% interval", "p (that interval's test)", "Holm-adjusted p", "detected"]


def gives_up_blocks(cmp: dict, plots: dict[str, Path]) -> list[Block]:
    g = cmp["gives_up"]
    held = ", ".join(display_name(s) for s in g["held_out"])
    metric = g["metric"]
    b: list[Block] = []
    if "gives_up" in plots:
        b.append(Block("img", plots["gives_up"], caption="What each method gives up: every figure as a difference "
                                                         "with its 95% interval (forest plot)"))
    b.append(Block("p", (
        f"Held out of training and validation: {held}, near-duplicate texts included (the test set keeps them). "
        f"In-domain scores are over the test examples of the sources trained on, out-of-domain scores over the "
        f"held-out ones, both in {metric}. Each figure is a paired difference over seeds; its interval is a "
        "t-interval over the pairs whose standard error adds the test-sampling variance the pairs share (a "
        "test-set bootstrap over the examples the figure is computed on: out-of-domain figures rest on fewer "
        "examples, so their intervals are wider), and the p beside it is that interval's test. Holm adjusts "
        "within each table. A figure is detected when its Holm-adjusted p < 0.05; a figure not detected is not "
        "evidence of no difference. Model selection and every search used the validation split, which holds no "
        "held-out source.")))
    for name, rows in g["comparisons"].items():
        a, ref = rows[0]["a"], rows[0]["b"]
        b.append(Block("table", [HEADER] + [_row(f"{r['figure']}: {a} - {ref}", r) for r in rows],
                       caption=f"{a} vs {ref}: in domain and out of domain ({metric})"))
    forgetting = g.get("forgetting")
    if forgetting:
        b.append(Block("table", [HEADER] + [_row(f"{m}: change from base (base {forgetting['base']:.4f})", r)
                                            for m, r in forgetting["methods"].items()],
                       caption=f"Forgetting: each method's out-of-domain {metric} minus the base checkpoint's "
                               f"(on {held})"))
        b.append(Block("p", _kept_sentence(g)))
    else:
        b.append(Block("p", "Forgetting is not measured: the base checkpoint does not already predict these "
                            "classes (no base row), so there is no skill of its own on the held-out sources to "
                            "keep or lose."))
    b.append(Block("p", INDEPENDENCE))
    return b


def _kept_sentence(g: dict) -> str:
    """Which method kept more of what the checkpoint could do: the methods' changes from base differ by exactly
    their out-of-domain difference (one base score on one test set), so that row answers it."""
    parts = []
    for rows in g["comparisons"].values():
        r = next(x for x in rows if x["metric"].endswith("_out_of_domain"))
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
