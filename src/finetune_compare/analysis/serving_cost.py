"""Serving cost in the comparison: serving.json (experiments/commands/serving.py) read into the verdict's cost line,
the efficiency table and the report's sentences on what merging buys.

Every latency is the forward pass of one deployable form, timed interleaved with the others in one process, so
ratios between forms and methods are the figures to read; the milliseconds themselves belong to this machine.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import Layout
from .run_files import read_json

FORMS = {"model": "deployed model (adapters merged)", "adapter": "unmerged adapter", "onnx": "ONNX Runtime"}
SAME_SPEED = 0.10  # a reading threshold the report states, not a test: within 10% is called the same speed


def read_serving(output_dir: str | Path) -> dict | None:
    path = Layout(output_dir).serving
    return read_json(path) if path.is_file() else None


def batch_key(latency: dict) -> str:
    """The batch of many texts ('batch_32', or all the texts of a smaller test set)."""
    return next(k for k in latency if k != "batch_1")


def method_serving(serving: dict | None, method: str) -> dict | None:
    """What the efficiency section keeps per method: latencies by form, sizes, which run was timed."""
    if not serving or method not in serving.get("methods", {}):
        return None
    m = serving["methods"][method]
    return {"seed": m["seed"], "merged": m["merged"], "latency": m.get("latency", {}), "bytes": m["bytes"]}


def p50_ms(e: dict, form: str) -> float | None:
    latency = ((e.get("serving") or {}).get("latency") or {}).get(form)
    return latency[batch_key(latency)]["p50_ms"] if latency else None


def serving_clause(a: str, b: str, eff: dict) -> str:
    """For the verdict's cost line: a's deployable model against b's at the large batch, a's unmerged adapter
    against its merged model, and the deployable size."""
    ea, eb = eff[a], eff[b]
    if not ea.get("serving") or not eb.get("serving"):
        return ""
    key = batch_key(ea["serving"]["latency"]["model"])
    a_model, b_model, a_adapter = p50_ms(ea, "model"), p50_ms(eb, "model"), p50_ms(ea, "adapter")
    form = "merged" if ea["serving"]["merged"] else "deployed"
    parts = [f"serving ({key.replace('_', ' ')}, p50 forward pass, CPU): {form} {a} {a_model / b_model:.2f}x {b}'s"]
    if a_adapter:
        parts.append(f"{a}'s unmerged adapter {a_adapter / a_model:.2f}x its merged model")
    size_a, size_b = ea["serving"]["bytes"]["model"], eb["serving"]["bytes"]["model"]
    parts.append(f"deployable size {size_a / size_b:.2f}x")
    return "; " + ", ".join(parts) + "."


def serving_rows(cmp: dict) -> list[list[str]]:
    """Efficiency table rows: p50 / p95 by form and batch, and the sizes on disk."""
    methods = cmp["methods"]
    eff = {m: cmp["efficiency"][m].get("serving") for m in methods}
    if not any(eff.values()):
        return []
    rows = []
    first = next(e for e in eff.values() if e)
    for batch in ("batch_1", batch_key(first["latency"]["model"])):
        for form, name in FORMS.items():
            def cell(e):
                lat = (e or {}).get("latency", {}).get(form)
                return f"{lat[batch]['p50_ms']:.1f} / {lat[batch]['p95_ms']:.1f}" if lat else "–"
            if any((e or {}).get("latency", {}).get(form) for e in eff.values()):
                rows.append([f"serving {batch.replace('_', ' ')}, {name}: p50 / p95 (ms)",
                             *(cell(eff[m]) for m in methods)])
    for form, name in (("model", "deployable model"), ("onnx", "ONNX graph"), ("adapter", "adapter alone")):
        if any((e or {}).get("bytes", {}).get(form) for e in eff.values()):
            rows.append([f"{name} on disk (MB)", *(f"{e['bytes'][form] / 2**20:.1f}" if e and e["bytes"].get(form)
                                                   else "–" for e in (eff[m] for m in methods))])
    return rows


def serving_sentences(cmp: dict) -> list[str]:
    """What merging buys, from the measurement: each method's merged model against the reference's, and its
    unmerged adapter against its merged model."""
    serving = cmp.get("serving")
    if not serving:
        return []
    eff, ref = cmp["efficiency"], cmp["reference"]
    measured = any(eff[m].get("serving") for m in cmp["methods"])
    out = [f"Serving was measured on each method's median run ({serving['texts']} test texts, {serving['rounds']} "
           f"interleaved rounds after {serving['warmup_rounds']} untimed ones, {serving['threads']} thread(s), "
           f"{serving['device']}, {serving.get('processor') or 'this machine'}; tokenisation excluded). Ratios "
           "carry over to other machines better than the milliseconds, and a ratio within "
           f"{SAME_SPEED:.0%} of 1 is read as the same speed."] if measured else []
    for m, why in (serving.get("not_measured") or {}).items():
        out.append(f"{m}'s serving was not measured: {why}.")
    for m in cmp["methods"]:
        e = eff[m].get("serving")
        if not e or m == ref or not eff.get(ref, {}).get("serving"):
            continue
        key = batch_key(e["latency"]["model"])
        ratio = p50_ms(eff[m], "model") / p50_ms(eff[ref], "model")
        form = "merged" if e["merged"] else "as deployed (not merged)"
        speed = ("at the same speed as" if abs(ratio - 1) <= SAME_SPEED else
                 f"{ratio:.2f}x as long as" if ratio > 1 else f"in {ratio:.2f}x the time of")
        text = f"{m}, {form}, serves {key.replace('_', ' ')} {speed} {ref} (p50 {ratio:.2f}x)"
        adapter = p50_ms(eff[m], "adapter")
        if adapter:
            slow = adapter / p50_ms(eff[m], "model")
            text += (f"; unmerged, its adapter takes {slow:.2f}x the merged model's time" if slow > 1 + SAME_SPEED
                     else "; unmerged, its adapter serves at the merged model's speed")
        out.append(text + ".")
    return out
