"""Check the decision rule through the real path: simulated comparison folders in, comparison.json out.

Each simulated experiment is a folder in the layout runs write (runs/<method>/seed-<n>/config.yaml, metrics.json,
predictions.jsonl) with one shared test set. Its verdict is read from the comparison.json that the report's
first stage (`aggregate.write_comparison`) writes, with the bootstrap and every input the report uses.

The generating model has each source of noise the design names:
- test example i has a difficulty z_i ~ N(0, 1) shared by every run (the test-set effect);
- pair k shares a skill offset s_k ~ N(0, pair_sd) between its two methods (the same data draw and batch order);
- run r of method m in pair k has skill theta = skill + delta_m + s_k + e_r, e_r ~ N(0, seed_sd);
- a method x example interaction: offsets u_{m,i} ~ N(0, interaction_sd), fixed across that method's seeds
  (each method better on examples of its own); they are what makes the pairs' test deviations covary;
- run r is right on example i when theta + u_{m,i} - z_i + eps_{r,i} > 0, eps ~ N(0, example_sd) (which examples
  one trained model gets right: the per-pair test noise); a wrong prediction is one of the other classes.

The true difference is the population one: the expected macro-F1 difference on an unlimited test set, over seeds
(`true_difference`). `effect_for` picks delta so that it equals a number of pair-SDs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from ..evaluation.metrics import evaluation_metrics
from ..evaluation.run_record import RunRecord, write_run_files
from ..layout import Layout
from ..utils.io import read_json

LABELS = ("negative", "neutral", "positive")
SOURCES = ("imdb", "sst5", "tweeteval")
FIRST_SEED = 42


@dataclass(frozen=True)
class Scenario:
    name: str
    n_test: int
    seed_sd: float  # each run's own seed noise, in skill units
    pair_sd: float  # the part of a pair's skill both its methods share
    example_sd: float  # per-run, per-example noise: which examples one model gets right
    interaction_sd: float = 0.0  # per-method, per-example offsets fixed across seeds
    cluster_size: int = 0  # > 0: those offsets are shared by clusters of this many test examples (within a source)
    skill: float = 0.3
    description: str = ""


SCENARIOS = {
    "test-noise": Scenario("test-noise", 450, seed_sd=0.01, pair_sd=0.05, example_sd=1.0,
                           description="test noise dominant, 450 test examples (the quickstart's size)"),
    "seed-noise": Scenario("seed-noise", 3000, seed_sd=0.12, pair_sd=0.05, example_sd=0.3,
                           description="seed noise dominant, 3,000 test examples (the study's size)"),
    "interaction": Scenario("interaction", 450, seed_sd=0.03, pair_sd=0.05, example_sd=0.5, interaction_sd=0.45,
                            description="a method x example interaction (each method better on its own examples), "
                                        "450 test examples"),
}
# Kept apart from SCENARIOS (the published decision-rule table's): the rule's example bootstrap is known to fail here,
# and the cluster bootstrap (a declared cluster_column) is what it is simulated for (benchmarks/simulate_clustered.py)
CLUSTERED = Scenario("clustered", 450, seed_sd=0.03, pair_sd=0.05, example_sd=0.5, interaction_sd=0.45,
                     cluster_size=10, description="the method x example interaction shared by clusters of 10 test "
                                                  "examples (reviews of one film), 450 test examples")


def cluster_ids(source: np.ndarray, size: int) -> np.ndarray:
    """Cluster ids: each source's examples, in their order, in consecutive groups of `size` (labels mixed)."""
    rank = np.empty(source.size, dtype=int)
    for s in np.unique(source):
        members = np.flatnonzero(source == s)
        rank[members] = np.arange(members.size)
    return np.array([f"{SOURCES[s]}-{r // size}" for s, r in zip(source, rank)])


def _test_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and sources, balanced over source x label (the stratified bootstrap's strata)."""
    cells = [(s, lab) for s in range(len(SOURCES)) for lab in range(len(LABELS))]
    per = np.array([n // len(cells) + (i < n % len(cells)) for i in range(len(cells))])
    source = np.repeat([c[0] for c in cells], per)
    label = np.repeat([c[1] for c in cells], per)
    order = rng.permutation(n)
    return label[order], source[order]


def simulate_predictions(sc: Scenario, rng: np.random.Generator, n_pairs: int, delta: float,
                         n_test: int | None = None, more: dict[str, float] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, dict[str, list[np.ndarray]]]:
    """(labels, sources, {method: [predictions of pair k]}) for one experiment; lora's skill is + delta, and each
    method of `more` (name: its skill offset) is simulated on the same test set too."""
    n = n_test or sc.n_test
    label, source = _test_set(rng, n)
    z = rng.normal(0, 1, n)
    deltas = {"full": 0.0, "lora": delta, **(more or {})}
    if sc.cluster_size:  # one offset per cluster and method, shared by its examples
        codes = np.unique(cluster_ids(source, sc.cluster_size), return_inverse=True)[1]
        offsets = {m: rng.normal(0, sc.interaction_sd, codes.max() + 1)[codes] for m in deltas}
    else:
        offsets = {m: rng.normal(0, sc.interaction_sd, n) if sc.interaction_sd else 0.0 for m in deltas}
    preds: dict[str, list[np.ndarray]] = {m: [] for m in deltas}
    for _ in range(n_pairs):
        shared = rng.normal(0, sc.pair_sd)
        for m in deltas:
            theta = sc.skill + deltas[m] + shared + rng.normal(0, sc.seed_sd)
            right = theta + offsets[m] - z + rng.normal(0, sc.example_sd, n) > 0
            wrong = (label + rng.integers(1, len(LABELS), n)) % len(LABELS)
            preds[m].append(np.where(right, label, wrong))
    return label, source, preds


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    from .statistics import metric_from_predictions

    return metric_from_predictions(y, p, "macro_f1", np.unique(y))


def true_difference(sc: Scenario, delta: float, seed: int = 12345, n_test: int = 200_000, runs: int = 40) -> float:
    """The population macro-F1 difference lora - full: a very large test set, averaged over many seeds."""
    rng = np.random.default_rng(seed)
    y, _, preds = simulate_predictions(sc, rng, runs, delta, n_test)
    return float(np.mean([_macro_f1(y, a) - _macro_f1(y, b) for a, b in zip(preds["lora"], preds["full"])]))


def pair_sd(sc: Scenario, seed: int = 999, experiments: int = 40, pairs: int = 10) -> float:
    """sqrt(E[SD^2]) of the paired differences within one experiment (what 'one pair-SD' means)."""
    rng = np.random.default_rng(seed)
    variances = []
    for _ in range(experiments):
        y, _, preds = simulate_predictions(sc, rng, pairs, 0.0)
        d = [_macro_f1(y, a) - _macro_f1(y, b) for a, b in zip(preds["lora"], preds["full"])]
        variances.append(np.var(d, ddof=1))
    return float(math.sqrt(np.mean(variances)))


EFFECT_TOLERANCE = 0.01  # the injected true difference is within 1% of the pair-SDs asked for


def effect_for(sc: Scenario, pair_sds: float, max_steps: int = 6) -> tuple[float, float]:
    """(delta in skill units, true macro-F1 difference) for a true difference of `pair_sds` pair-SDs. Macro-F1 is
    close to linear in skill but not quite (one linear step from a probe gave 0.94-0.98 pair-SDs): secant steps on
    the population difference until it is within EFFECT_TOLERANCE of the target."""
    if pair_sds == 0:
        return 0.0, 0.0
    target = pair_sds * pair_sd(sc)
    x0, f0 = 0.0, 0.0
    x1 = 0.05
    f1 = true_difference(sc, x1)
    for _ in range(max_steps):
        if abs(f1 - target) <= EFFECT_TOLERANCE * abs(target):
            break
        x0, f0, x1 = x1, f1, x1 + (target - f1) * (x1 - x0) / (f1 - f0)
        f1 = true_difference(sc, x1)
    return x1, f1


def _run_record(method: str, seed: int, y: np.ndarray, p: np.ndarray, source: np.ndarray,
                held_out: tuple[str, ...] = ()) -> RunRecord:
    """A run's record as runs write it; the cost fields are fixed (they play no part in the verdict). With
    `held_out` sources, its test section has the in-domain and out-of-domain scores, as holdout_sources writes."""
    test = evaluation_metrics(y, p, [SOURCES[s] for s in source], LABELS, held_out)
    lora = method == "lora"
    return RunRecord(
        method=method, seed=seed, model_name="simulated", head=None, labels=list(LABELS), test=test,
        validation={"best_macro_f1": test["macro_f1"], "best_step": 10},
        params={"trainable": 74_883 if lora else 22_714_371, "total": 22_788_867 if lora else 22_714_371,
                "adapter": 73_728 if lora else 0, "head": 1_155, "trainable_ratio": 0.0033 if lora else 1.0},
        training={"epochs_run": 3.0, "steps": 90, "stopped_early": False, "max_epochs": 3, "patience": 2},
        timing={"train_seconds": 30.0, "seconds_per_epoch": 10.0, "train_samples_per_second": 40.0,
                "train_tokens_per_second": 4000.0, "eval_seconds": 2.0, "eval_samples_per_second": 200.0,
                "eval_tokens_per_second": 20000.0},
        memory={"peak_rss_mb": 1000.0, "peak_cuda_mb": None},
        health={"collapsed": False, "diverged": False, "problems": []},
    )


def write_experiment(folder: Path, y: np.ndarray, source: np.ndarray, preds: dict[str, list[np.ndarray]],
                     margin: float | None = 0.01, clusters: np.ndarray | None = None,
                     held_out: tuple[str, ...] = ()) -> Path:
    """One simulated comparison folder, in the layout and formats runs write; with `clusters`, each prediction row
    carries its cluster id, as runs on data with a cluster_column write it; with `held_out`, the runs record the
    in-domain and out-of-domain scores of those sources held out (the gives-up rows)."""
    layout = Layout(folder)
    config = yaml.safe_dump({"primary_metric": "macro_f1", "equivalence_margin": margin})
    for m, by_pair in preds.items():
        for k, p in enumerate(by_pair):
            seed = FIRST_SEED + k
            run = layout.run_dir(m, seed)
            run.mkdir(parents=True, exist_ok=True)
            rows = [{"id": f"t{i}", "source": SOURCES[source[i]], "label": int(y[i]), "predicted": int(p[i]),
                     **({"cluster": str(clusters[i])} if clusters is not None else {}),
                     "probabilities": {lab: float(c == p[i]) for c, lab in enumerate(LABELS)}, "text": f"example {i}"}
                    for i in range(y.size)]
            write_run_files(run, config, _run_record(m, seed, y, p, source, held_out), {"train": [], "eval": []},
                            rows)
    return folder


def folder_verdict(folder: Path) -> dict:
    """The primary comparison as comparison.json holds it, written by the report's first stage."""
    from .aggregate import write_comparison

    write_comparison(folder, supporting_evidence=False)  # ASO (6 s a folder) is shown beside the verdict, not in it
    primary = read_json(Layout(folder).comparison)["comparisons"]["lora_vs_full"]["primary"]
    return primary


def simulate_cell(sc: Scenario, n_pairs: int, pair_sds: float, reps: int, workdir: Path, seed: int = 0,
                  delta: tuple[float, float] | None = None, declare_clusters: bool = False) -> dict:
    """`reps` simulated folders of one scenario, pair count and true effect: how often each rule claims a difference,
    and how often the verdict's interval covers the true difference. `declare_clusters`: the folders' predictions
    carry the scenario's cluster ids (as with a cluster_column), so the bootstrap resamples whole clusters."""
    import shutil

    delta_skill, truth = delta or effect_for(sc, pair_sds)
    rng = np.random.default_rng([seed, n_pairs, int(round(pair_sds * 100))])
    counts = {"claims": 0, "t_claims": 0, "covered": 0, "equivalent": 0, "before_claims": 0, "before_covered": 0,
              "mcnemar_seed_claims": 0}
    for rep in range(reps):
        folder = workdir / f"{sc.name}-{n_pairs}-{pair_sds:g}-{rep}"
        y, source, preds = simulate_predictions(sc, rng, n_pairs, delta_skill)
        clusters = cluster_ids(source, sc.cluster_size) if declare_clusters and sc.cluster_size else None
        primary = folder_verdict(write_experiment(folder, y, source, preds, clusters=clusters))
        v = primary["verdict"]
        counts["claims"] += v["kind"] in ("better", "worse")
        counts["equivalent"] += v["kind"] == "equivalent"
        counts["covered"] += v["ci_low"] <= truth <= v["ci_high"]
        counts["t_claims"] += primary["t_p"] is not None and primary["t_p"] < 0.05
        per_seed = primary["test_level"]["per_seed"]  # McNemar per pair: a test of two trained models
        counts["mcnemar_seed_claims"] += sum(s["mcnemar_p"] < 0.05 for s in per_seed) / len(per_seed)
        before = shipped_before(primary)
        counts["before_claims"] += before["claims"]
        counts["before_covered"] += before["low"] <= truth <= before["high"]
        shutil.rmtree(folder)
    return {"scenario": sc.name, "n_pairs": n_pairs, "pair_sds": pair_sds, "true_difference": truth,
            "injected_pair_sds": truth / pair_sd(sc) if pair_sds else 0.0,
            "reps": reps, "clusters_declared": declare_clusters, **{k: v / reps for k, v in counts.items()}}


def record_cell(done: dict, key: str, out: Path, compute: Callable[[], dict], summary: Callable[[dict], str]) -> dict:
    """One cell of a resumable simulation (benchmarks/simulate_*.py): computed, timed, kept in `done["cells"]` and
    written to `out` at once, so an interrupted run resumes at the next cell; prints `key: summary, seconds`."""
    import json
    import time

    from ..utils.io import atomic_write_text

    start = time.perf_counter()
    cell = compute()
    cell["seconds"] = round(time.perf_counter() - start, 1)
    done["cells"][key] = cell
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(done, indent=2, default=float) + "\n")
    print(f"{key}: {summary(cell)}, {cell['seconds']:.0f} s", flush=True)
    return cell


def shipped_before(primary: dict) -> dict:
    """The rule this project shipped before the verdict counted test noise once, from the same comparison.json:
    mean +- t(n-1) sqrt(SD^2/n + SE_test^2), and a claim only when that excludes 0 and the paired t-test p < 0.05."""
    from scipy import stats

    n, sd, d = primary["n_pairs"], primary["diff_sd"], primary["diff_mean"]
    se_test = primary["test_level"]["se_test"]
    half = stats.t.ppf(0.975, n - 1) * math.sqrt(sd ** 2 / n + se_test ** 2)
    low, high = d - half, d + half
    return {"low": low, "high": high, "claims": (low > 0 or high < 0) and primary["t_p"] < 0.05}
