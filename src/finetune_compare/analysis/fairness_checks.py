"""Was the comparison fair to each method? Three checks the tool makes itself, for every comparison that can have them.

- Search-space edges (tuned comparisons): a method's best setting within the outer 10% of a searched range (on the
  log scale for a log range), or the largest or smallest of three or more numeric choices, says the best may lie
  outside what was searched. `tune_extend: true` widens such ranges once and tunes again (`widened_space`).
- Budget adequacy: more than a quarter of a method's runs scored best on validation at their last evaluation, so
  the budget may have been short for it.
- Tuning saturation: the expected-validation curve (Dodge et al. 2019) still rising at the last trial, i.e. its last
  step (the expected gain of the last trial) above SATURATION_GAIN: more trials could still have raised the method.

Each finding is a sentence beside the verdicts it concerns and a table in the report; none changes a verdict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .run_files import read_searches

EDGE_SHARE = 0.10  # the outer tenth of a range, at either end
SHORT_BUDGET_SHARE = 0.25  # more than this share of a method's runs best at their last evaluation
SATURATION_GAIN = 0.002  # the curve's last step above this (in the search metric's units): still rising


def _position(value: float, spec: dict) -> float:
    low, high = float(spec["low"]), float(spec["high"])
    if spec.get("log"):
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def _numeric_choices(spec: dict) -> list[float] | None:
    choices = spec.get("choices") or []
    if len(choices) < 3 or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return None  # unordered choices, or two (where either one is an end)
    return sorted(choices)


def search_edges(space: dict, params: dict) -> list[dict]:
    """[{key, value, side, searched}] for each searched setting whose best value lies at an edge of its range."""
    edges = []
    for key, spec in space.items():
        if key not in params:
            continue
        value = params[key]
        if spec.get("type") == "categorical":
            choices = _numeric_choices(spec)
            if choices is None or value not in choices:
                continue
            side = "low" if value == choices[0] else "high" if value == choices[-1] else None
            searched = f"choices {', '.join(f'{c:g}' for c in choices)}"
        else:
            position = _position(float(value), spec)
            side = "low" if position <= EDGE_SHARE else "high" if position >= 1 - EDGE_SHARE else None
            searched = f"{spec['low']:g} to {spec['high']:g}" + (" (log)" if spec.get("log") else "")
        if side:
            edges.append({"key": key, "value": value, "side": side, "searched": searched})
    return edges


def _widen_choices(choices: list, side: str, bound: float | None) -> list | None:
    ints = all(isinstance(c, int) for c in choices)
    ratio = choices[1] / choices[0] if choices[0] > 0 else None
    geometric = ratio is not None and all(math.isclose(b / a, ratio) for a, b in zip(choices, choices[1:]) if a > 0)
    if side == "high":
        new = choices[-1] * ratio if geometric else choices[-1] + (choices[-1] - choices[-2])
    else:
        new = choices[0] / ratio if geometric else choices[0] - (choices[1] - choices[0])
    new = round(new) if ints else new
    if bound is not None and (new < bound if side == "low" else new > bound):
        return None
    return sorted({*choices, new})


def widened_space(space: dict, edges: list[dict], bounds: dict[str, tuple]) -> tuple[dict, list[str]]:
    """`space` with each edge's range widened once, by half its width (on its own scale) on the edge's side, or its
    choices by one more step of their sequence; (space, one line per change or per edge that cannot move, because
    the setting's own bound is there). `bounds`: {key: (min, max)} of the settings, None where open."""
    out = {k: dict(v) for k, v in space.items()}
    notes = []
    for edge in edges:
        key, side, spec = edge["key"], edge["side"], out[edge["key"]]
        low_bound, high_bound = bounds.get(key, (None, None))
        if spec.get("type") == "categorical":
            choices = _widen_choices(_numeric_choices(spec), side, low_bound if side == "low" else high_bound)
            if choices is None:
                notes.append(f"{key}: best {_value(edge['value'])} at the {side} end; not widened (the setting's "
                             "bound)")
                continue
            notes.append(f"{key}: choices {spec['choices']} -> {choices}")
            spec["choices"] = choices
            continue
        low, high = float(spec["low"]), float(spec["high"])
        if spec.get("log"):
            half = math.sqrt(high / low)
            new_low, new_high = (low / half, high) if side == "low" else (low, high * half)
        else:
            half = (high - low) / 2
            new_low, new_high = (low - half, high) if side == "low" else (low, high + half)
        if low_bound is not None:
            new_low = max(new_low, low_bound)
        if high_bound is not None:
            new_high = min(new_high, high_bound)
        if spec["type"] == "int":
            new_low, new_high = math.floor(new_low), math.ceil(new_high)
        else:
            new_low, new_high = float(f"{new_low:.3g}"), float(f"{new_high:.3g}")
        if (new_low, new_high) == (spec["low"], spec["high"]) or (spec.get("log") and new_low <= 0):
            notes.append(f"{key}: best {_value(edge['value'])} at the {side} end; not widened (the setting's "
                         "bound)")
            continue
        notes.append(f"{key}: {spec['low']:g} to {spec['high']:g} -> {new_low:g} to {new_high:g}")
        spec["low"], spec["high"] = new_low, new_high
    return out, notes


def deciding_search(first: dict, extended: dict | None) -> dict:
    """Of a method's first search and its widened one (tune_extend), the one whose best validation score is higher:
    its best settings are the method's tuned settings. (The widened search starts afresh, so with few trials it can
    end below the first; the method has then had both searches' trials, which the report states.) Once decided,
    the first search's summary records which (`decided_by`), and that record is what a report reads."""
    if extended and first.get("decided_by") in ("first", "widened"):
        return extended if first["decided_by"] == "widened" else first
    if extended and extended.get("best_value") is not None and (
            first.get("best_value") is None or extended["best_value"] > first["best_value"]):
        return extended
    return first


def saturation(curve: list[dict]) -> dict | None:
    """{trials, last_gain, rising}: the expected-validation curve's last step (the expected gain of its last
    complete trial) and whether it is above SATURATION_GAIN. None with fewer than two complete trials."""
    if len(curve) < 2:
        return None
    gain = curve[-1]["mean"] - curve[-2]["mean"]
    return {"trials": len(curve), "last_gain": round(gain, 6), "rising": gain > SATURATION_GAIN}


def short_budget(entry: dict) -> dict | None:
    """{runs, best_at_last}: when more than a quarter of a method's runs scored best at their last evaluation."""
    last, runs = entry.get("best_at_last_evaluation") or 0, entry.get("runs") or 0
    if runs and last / runs > SHORT_BUDGET_SHARE:
        return {"runs": runs, "best_at_last": last}
    return None


def fairness_checks(output_dir: str | Path, methods: list[str], efficiency: dict) -> dict:
    """{method: {edges?, extension?, saturation?, short_budget?}} for the methods with a finding or a search; the
    searches are read from the folder's optimize/ (its summary.json per method and per later search)."""
    searches = read_searches(output_dir)
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        found: dict[str, Any] = {}
        budget = short_budget(efficiency.get(method) or {})
        if budget:
            found["short_budget"] = budget
        if method in searches:
            first, extended = searches[method]
            decided = deciding_search(first, extended)
            found["edges"] = first.get("edges") or []
            if extended is not None:
                found["extension"] = {"widened": first.get("widened") or [], "edges": extended.get("edges") or [],
                                      "trials": extended.get("trials"), "best_value": extended.get("best_value"),
                                      "first_best_value": first.get("best_value"),
                                      "decided_by": "widened" if decided is extended else "first"}
            curve = (decided.get("expected_validation") or {}).get("curve") or []
            found["saturation"] = saturation(curve)
        if found:
            out[method] = found
    return out


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _edge_text(edges: list[dict]) -> str:
    return "; ".join(f"{e['key']} {_value(e['value'])} at the {e['side']} end of {e['searched']}" for e in edges)


def method_findings(method: str, found: dict) -> list[str]:
    """The sentences one method's checks give (empty when there is nothing to say)."""
    lines = []
    extension = found.get("extension")
    if found.get("edges") and not extension:
        lines.append(f"{method}'s best setting lies at an edge of its search ({_edge_text(found['edges'])}): the best "
                     "may lie outside what was searched (tune_extend: true widens such ranges once and tunes again).")
    if extension:
        still = (f"; the widened search's best is still at an edge: {_edge_text(extension['edges'])}"
                 if extension["edges"] else "; the widened search's best is at no edge")
        used = ("the widened search's best (validation {best_value:.4f} against {first_best_value:.4f})"
                if extension["decided_by"] == "widened" else
                "the first search's best, which the widened search did not beat ({first_best_value:.4f} against "
                "{best_value:.4f})").format(**extension)
        lines.append(f"{method}'s first search ended at an edge ({_edge_text(found['edges'])}), so its space was "
                     f"widened once ({'; '.join(extension['widened'])}) and it was tuned again with the same "
                     f"{extension['trials']} trials; the comparison uses {used}{still}. {method} was thus tuned "
                     f"with {2 * extension['trials']} trials in all.")
    sat = found.get("saturation")
    if sat and sat["rising"]:
        lines.append(f"{method}'s expected-validation curve was still rising at its last trial (expected gain of the "
                     f"last of {sat['trials']} complete trials {sat['last_gain']:+.4f}, above {SATURATION_GAIN}): "
                     "more trials could still raise it.")
    budget = found.get("short_budget")
    if budget:
        lines.append(f"The budget may have been short for {method}: {budget['best_at_last']} of its "
                     f"{budget['runs']} runs scored best on validation at their last evaluation (more than a "
                     "quarter).")
    return lines


def fairness_clause(a: str, b: str | None, fairness: dict | None) -> str | None:
    """What the checks found about the methods of one verdict (`b` None: the reference, whose findings several
    verdicts share, is said once elsewhere), for the sentence beside it."""
    lines = [line for m in (a, b) if m for line in method_findings(m, (fairness or {}).get(m) or {})]
    return " ".join(lines) or None


def fairness_blocks(fairness: dict | None) -> list:
    """The report's table of the three checks, one row per method, and every finding in words."""
    from .report_blocks import Block

    if not fairness:
        return []
    rows = [["method", "best setting at an edge of the search", "widened and tuned again", "last trial's expected gain",
             "runs best at their last evaluation"]]
    for method, found in fairness.items():
        extension, sat, budget = found.get("extension"), found.get("saturation"), found.get("short_budget")
        rows.append([
            method, _edge_text(found.get("edges") or []) or "no",
            ("; ".join(extension["widened"]) + ("; still at an edge: " + _edge_text(extension["edges"])
                                                if extension["edges"] else "; no edge after")
             + f"; the {extension['decided_by']} search decided") if extension else "–",
            (f"{sat['last_gain']:+.4f} ({'still rising' if sat['rising'] else 'flat'})" if sat else "–"),
            f"{budget['best_at_last']} of {budget['runs']} (more than a quarter)" if budget else "a quarter or fewer"])
    lines = [line for method, found in fairness.items() for line in method_findings(method, found)]
    return [Block("table", rows, caption=f"Fairness checks: an edge is the outer {EDGE_SHARE:.0%} of a range (log "
                                         "scale for a log range) or the end of three or more numeric choices; a "
                                         f"curve is still rising when its last step exceeds {SATURATION_GAIN}; a "
                                         f"budget may be short when more than {SHORT_BUDGET_SHARE:.0%} of a method's "
                                         "runs scored best at their last evaluation"),
            *[Block("p", line) for line in lines]]
