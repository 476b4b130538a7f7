"""`finetune-compare plan --pilot DIR`: from a finished comparison used as a pilot, how many paired runs would detect
a declared effect (and show a declared margin) with 80% power, with the range the pilot's SD leaves open.

The planned experiment is assumed to use a test set like the pilot's (its size sets the shared test-set part).
"""

from __future__ import annotations

from pathlib import Path

from ...analysis.planning import MAX_PAIRS, POWER, plan
from ...analysis.run_files import read_json
from ...analysis.verdict import MC_BAND, shared_test_variance, shared_variance_band
from ...errors import UserError
from ...layout import Layout


def pilot_comparisons(pilot: Path) -> dict:
    """The pilot's comparison.json (written by compare or report), checked for what planning reads."""
    layout = Layout(pilot)
    if not pilot.is_dir():
        raise UserError(f"--pilot '{pilot}' is not a directory; give a comparison's results folder")
    if layout.points.is_dir() and not layout.comparison.is_file():
        raise UserError(f"--pilot '{pilot}' is a sweep; give one point's folder, e.g. {layout.points}/<point>")
    if not layout.comparison.is_file():
        raise UserError(f"--pilot '{pilot}' has no comparison.json; run `finetune-compare report --results {pilot}` "
                        "first (or compare, to train the pilot)")
    cmp = read_json(layout.comparison)
    comparisons = cmp.get("comparisons") if isinstance(cmp, dict) else None
    if not comparisons:
        raise UserError(f"--pilot '{pilot}': its comparison.json compares no two methods")
    return cmp


def _pairs(n: int | None, reachable: bool) -> str:
    if n is not None:
        return f"{n:,}"
    return f"more than {MAX_PAIRS:,}" if reachable else "no number of"


def _answer(r: dict) -> str:
    if not r["reachable"]:
        return ("no number of pairs: the part of test-set noise shared by all pairs is too large for it, over all of "
                "its estimate's Monte Carlo error; a larger test set is needed")
    lo, hi = r["pairs_range"]
    over = "over the SD's 95% interval" + (" and the shared part's Monte Carlo error" if r["banded"] else "")
    if not r["reachable_at_high"]:
        return (f"{_pairs(r['pairs'], True)} pairs at the estimates, {_pairs(lo, True)} or more {over}, and possibly "
                "no number: the shared test-set part is too close to the limit to say; a larger test set is the sure "
                "way")
    return f"{_pairs(r['pairs'], True)} pairs ({_pairs(lo, True)} to {_pairs(hi, True)} {over})"


def plan_lines(pilot: Path, effect: float | None, margin: float | None, power: float = POWER) -> list[str]:
    cmp = pilot_comparisons(pilot)
    margin = margin if margin is not None else cmp.get("equivalence_margin")
    if effect is None and margin is None:
        raise UserError("plan needs --effect (a difference to detect) or --margin (the pilot declares none)")
    lines = []
    for c in cmp["comparisons"].values():
        p = c["primary"]
        if p["n_pairs"] < 3 or p.get("diff_sd") is None:
            lines.append(f"{c['a']} vs {c['b']}: the pilot has {p['n_pairs']} pairs; planning needs at least 3")
            continue
        shared = shared_test_variance(p.get("test_level"), p["n_pairs"])  # the verdict's c_hat
        band = shared_variance_band(p.get("test_level"), p["n_pairs"])  # what another bootstrap seed could give
        result = plan(p["diff_sd"], p["n_pairs"], shared, effect, margin, power, band)
        lo, hi = result["sd_ci"]
        n_test = (p.get("test_level") or {}).get("n_test")
        lines.append(f"{c['a']} vs {c['b']} on {c['primary_metric']}, from {p['n_pairs']} pilot pairs"
                     + (f" on {n_test:,} test examples" if n_test else "") + f": SD of the paired differences "
                     f"{p['diff_sd']:.4f} (95% interval {lo:.4f} to {hi:.4f}), shared test-set variance "
                     + (f"{shared:.2e} ({band[0]:.2e} to {band[1]:.2e} within {MC_BAND} Monte Carlo SEs)"
                        if shared is not None else "unknown (no predictions: seed noise only)"))
        if "effect" in result:
            e = result["effect"]
            lines.append(f"  to detect a true difference of ±{effect:g} with {power:.0%} probability: {_answer(e)}")
        if "margin" in result:
            m = result["margin"]
            lines.append(f"  to show equivalence within ±{margin:g} with {power:.0%} probability when there is no "
                         f"true difference: {_answer(m)}")
    lines.append("(a test set of the pilot's size assumed; a larger one shrinks the shared part and the per-pair "
                 "test noise in the SD)")
    return lines
