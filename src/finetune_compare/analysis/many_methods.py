"""Three or more methods: which cannot be told apart from the best, and the Pareto front of quality against cost.

Which could be the best (Gupta's subset selection, Bonferroni form). Method i stays in the set when, for every
other method j, the one-sided upper bound of mean(i - j) is >= 0: i cannot be shown worse than any of them. The
bound is the verdict's kind (paired differences over the seeds, plus the test-set noise every pair shares, counted
once): mean + t(1 - alpha / (k - 1), n - 1) * sqrt(SD^2 / n + c_hat). The true best method is in the set with at
least 95% probability, because its k - 1 bounds each fail with probability at most alpha / (k - 1). Every method is
judged against every other, so picking the best by the same runs biases nothing. It takes the test examples as
independent (unless clusters were declared).

The Pareto front, per cost (trainable parameters, training time, training memory, and serving latency once
measured): a method is on the front when no other method has a higher or equal mean score at a lower or equal cost,
one of the two strictly. It is judged on the means; the intervals and the set above say where the order of the
scores is not established.
"""

from __future__ import annotations

import math
from pathlib import Path

from .serving_cost import p50_ms
from .statistics import ALPHA, MIN_PAIRS, _t, paired
from .test_evidence import test_set_evidence
from .verdict import shared_test_variance

COSTS = {  # key in comparison.json's efficiency -> (label, unit)
    "trainable_params": ("trainable parameters", ""),
    "train_seconds": ("training time", "s"),
    "peak_rss_above_baseline_mb": ("training memory (peak RSS above the run's start)", "MB"),
    "peak_cuda_mb": ("peak CUDA memory", "MB"),
    "serving_p50_ms": ("serving latency (deployable model, large batch, p50 forward pass)", "ms"),
}


def _bound(a_scores: dict, b_scores: dict, evidence: dict | None, k: int) -> dict | None:
    p = paired(a_scores, b_scores)
    n, mean, sd = p["n_pairs"], p["diff_mean"], p["diff_sd"]
    if n < MIN_PAIRS or sd is None:
        return None
    shared = shared_test_variance(evidence, n) or 0.0
    se = math.sqrt(sd ** 2 / n + shared)
    return {"diff_mean": mean, "upper": mean + _t(1 - ALPHA / (k - 1), n - 1) * se, "n_pairs": n,
            "test_set_counted": evidence is not None}


def possibly_best(output_dir: Path, methods: list[str], scores: dict[str, dict[int, float]], comparisons: dict,
                  primary_key, seed: int, held_out=()) -> dict | None:
    """{method: {in_set, worst: the other method with the lowest upper bound, upper, diff_mean}}, with the rule;
    None with fewer than 3 methods (the verdict alone says it) or too few pairs."""
    k = len(methods)
    if k < 3:
        return None
    evidence = {}  # the test-set bootstraps the verdicts already made, reused (either order: the variance is the same)
    for c in comparisons.values():
        evidence[frozenset((c["a"], c["b"]))] = c["primary"].get("test_level")
    rows = {}
    for i in methods:
        bounds = {}
        for j in methods:
            if j == i:
                continue
            key = frozenset((i, j))
            if key not in evidence:
                seeds = sorted(set(scores[i]) & set(scores[j]))
                evidence[key] = (test_set_evidence(output_dir, i, j, seeds, primary_key, seed, held_out)
                                 if len(seeds) >= 2 else None)
            bound = _bound(scores[i], scores[j], evidence[key], k)
            if bound is None:
                return None
            bounds[j] = bound
        worst = min(bounds, key=lambda j: bounds[j]["upper"])
        rows[i] = {"in_set": bounds[worst]["upper"] >= 0, "worst": worst, **bounds[worst]}
    return {"methods": rows, "confidence": 1 - ALPHA, "one_sided_level": ALPHA / (k - 1),
            "rule": "Gupta's subset selection (Bonferroni over the k - 1 others): one-sided upper bound of each "
                    "method minus every other >= 0, on paired differences over the seeds plus the shared "
                    "test-set noise"}


def cost_of(eff: dict, key: str) -> float | None:
    if key == "train_seconds":
        return (eff.get("train_seconds") or {}).get("mean")
    if key == "serving_p50_ms":  # the deployable model (merged where the method merges) at the large batch
        return p50_ms(eff, "model")
    return eff.get(key)


def pareto(methods: list[str], per_method: dict, efficiency: dict, primary: str) -> dict:
    """Per cost: each method's mean score, its 95% t-interval over the seeds, its cost, and whether it is on the
    front. A cost some method lacks (no CUDA, serving not measured) is left out."""
    quality = {m: per_method[m][primary] for m in methods}
    out = {}
    for key, (label, unit) in COSTS.items():
        costs = {m: cost_of(efficiency[m], key) for m in methods}
        if any(c is None for c in costs.values()) or any(quality[m]["mean"] is None for m in methods):
            continue
        rows = {}
        for m in methods:
            q, c = quality[m]["mean"], costs[m]
            dominated_by = [o for o in methods if o != m and quality[o]["mean"] >= q and costs[o] <= c
                            and (quality[o]["mean"] > q or costs[o] < c)]
            rows[m] = {"cost": c, "mean": q, "ci_low": quality[m]["ci_low"], "ci_high": quality[m]["ci_high"],
                       "on_front": not dominated_by, "dominated_by": dominated_by}
        out[key] = {"label": label, "unit": unit, "methods": rows}
    return out


def serving_cost_available(efficiency: dict) -> bool:
    return any(cost_of(e, "serving_p50_ms") is not None for e in efficiency.values())
