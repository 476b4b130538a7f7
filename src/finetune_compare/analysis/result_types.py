"""The types of what analysis builds: a comparison (comparison.json), each pairwise comparison and its verdict, and
a sweep (sweep.json). They are TypedDicts, so the JSON files, the reports and the CLI read the same declared keys
and a type checker follows them; `missing_or_unknown` checks a value against its type (the tests hold the stored
results to it)."""


import types
import typing
from typing import Any, Literal, NotRequired, TypedDict

VerdictKind = Literal["better", "worse", "equivalent", "inconclusive", "too_few"]


class Detectable(TypedDict):
    power: float
    value: float  # the true difference these pairs detect with `power`
    low: float  # ... over the 95% interval of the SD of the differences
    high: float


class Verdict(TypedDict):
    """The decision on the primary metric (analysis.verdict.decide)."""
    kind: VerdictKind
    n_pairs: int
    df: int | None
    equivalence_margin: float | None
    comparisons: int  # methods compared against the reference: the family Holm (claims) and Bonferroni (TOST) correct
    correction: NotRequired[str | None]  # "holm" (several methods), "bonferroni" (a verdict taken alone), None (one)
    alpha: float  # the level this claim of a difference was tested at (its Holm step's)
    equivalence_alpha: NotRequired[float]  # TOST's: alpha / comparisons
    confidence: float
    p: float | None
    p_adjusted: float | None
    se_test: float | None
    shared_test_variance: float | None  # c_hat: test-set noise shared by the pairs, counted once
    ci_low: float | None
    ci_high: float | None
    se: float | None
    tost_p: float | None
    detectable: Detectable | None
    margin_floor: float | None
    notes: list[str]
    text: str
    equivalence_ci: NotRequired[list[float]]  # the (1 - 2 equivalence_alpha) interval TOST used, when equivalent


class PairedStatistics(TypedDict):
    """One metric's paired differences over seeds (analysis.statistics.paired_summary)."""
    seeds: list[int]
    n_pairs: int
    diffs: list[float]
    diff_mean: float | None
    diff_sd: float | None
    t_ci_low: float | None
    t_ci_high: float | None
    t_p: float | None
    sign_flip_p: float | None
    sign_flip_note: str | None
    within_pair_correlation: float | None
    p_holm: NotRequired[float | None]  # secondary metrics: Holm-adjusted over the family
    test_level: NotRequired[dict[str, Any] | None]  # the primary metric: the test-set bootstrap per seed
    verdict: NotRequired[Verdict]  # the primary metric
    aso: NotRequired[dict[str, Any] | None]  # the primary metric: almost stochastic order, supporting evidence


class MethodComparison(TypedDict):
    a: str
    b: str  # the reference
    primary_metric: str
    primary: PairedStatistics
    secondary: dict[str, PairedStatistics]


class RankingRow(TypedDict):
    method: str
    diff_mean: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_adjusted: float | None
    kind: str  # a VerdictKind, or "reference"
    n_pairs: int | None
    confidence: NotRequired[float | None]


class ComparisonResult(TypedDict):
    """comparison.json: built by analysis.aggregate.build_comparison, extended by the report (error analysis,
    plots), rendered by the reports, printed by the CLI."""
    methods: list[str]
    labels: NotRequired[list[str]]  # absent from comparisons restated from files written before it
    reference: str
    primary_metric: str
    equivalence_margin: float | None
    n_runs: dict[str, int]
    collapsed_runs: list[dict[str, Any]]
    excluded_runs: NotRequired[list[dict[str, Any]]]  # absent from comparisons restated from files written before it
    paired_seeds: NotRequired[list[int]]  # absent from comparisons restated from files written before it
    runs: NotRequired[dict[str, list[int]]]  # absent from comparisons restated from files written before it
    flagged_runs: list[dict[str, Any]]
    not_learned: NotRequired[list[dict[str, Any]]]  # runs that show signs of not having learned (learning_checks.py)
    sources: list[str]
    metric_groups: dict[str, list[str]]
    per_method: dict[str, dict[str, dict[str, Any]]]
    comparisons: dict[str, MethodComparison]
    efficiency: dict[str, dict[str, Any]]
    base: dict[str, Any] | None
    headline: list[str]
    summary: list[str]
    ranking: list[RankingRow]
    too_few_runs: bool
    model_name: str
    base_is_classifier: bool
    environment: dict[str, Any]
    error_analysis: NotRequired[dict[str, Any] | None]  # added by the report
    plots: NotRequired[dict[str, str]]  # added by the report
    tuning: NotRequired[dict[str, dict[str, Any]]]  # tuned against tuned: each method's study (added by the report)
    failed_runs: NotRequired[list[dict[str, Any]]]  # runs that failed on every Ray attempt (added by the report)
    preregistration: NotRequired[dict[str, Any]]  # what the study declared before it ran (added by the report)
    resolved_config: NotRequired[str]  # a run's config.yaml, shown by the report (added by the report)
    held_out_sources: NotRequired[list[str]]  # the sources training never saw (holdout_sources), when any
    gives_up: NotRequired[dict[str, Any]]  # out-of-domain, forgetting and drift figures (analysis/gives_up.py)
    fairness: NotRequired[dict[str, dict[str, Any]]]  # search edges, saturation, short budgets (fairness_checks.py)


class SweepComparison(TypedDict):
    a: str
    b: str
    n_pairs: int
    diff_mean: float | None
    ci_low: float | None
    ci_high: float | None
    t_p: float | None
    tost_p: float | None
    kind: str
    text: str
    detectable: Detectable | None


class SweepPoint(TypedDict):
    values: dict[str, Any]
    name: str
    folder: str
    methods: dict[str, dict[str, Any]]
    comparisons: dict[str, SweepComparison]
    sources: list[str]
    held_out: NotRequired[list[str]]  # the point's held-out sources (a leave-one-source-out sweep)
    gives_up: NotRequired[dict[str, list[dict[str, Any]]]]  # per comparison: its "What each method gives up" rows


class SweepSummary(TypedDict):
    """sweep.json: built by analysis.sweep_report.collect from every point's comparison."""
    kind: Literal["sweep"]
    keys: list[str]
    grid: dict[str, list]
    reference: str
    primary_metric: str
    equivalence_margin: float | None
    methods: list[str]
    comparisons: list[str]
    sources: list[str]
    num_runs: int | None
    model_name: str | None
    data_source: str | None
    environment: dict[str, Any]
    points: list[SweepPoint]
    missing_points: list[str]
    answer: list[str]
    plots: NotRequired[dict[str, str]]


def _typed_dict(tp: Any) -> type | None:
    """`tp` (or the TypedDict inside `X | None`) when it is a TypedDict."""
    if typing.is_typeddict(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.is_typeddict(arg):
                return arg
    return None


def missing_or_unknown(value: Any, tp: type, where: str = "") -> list[str]:
    """Keys `value` lacks or has beyond `tp` (a TypedDict), recursively through nested TypedDicts, lists and
    dict values: [] when it conforms."""
    if not isinstance(value, dict):
        return [f"{where or 'value'}: expected a mapping, got {type(value).__name__}"]
    problems = [f"{where}{k}: missing" for k in sorted(tp.__required_keys__ - set(value))]
    problems += [f"{where}{k}: not declared" for k in sorted(set(value) - tp.__required_keys__ - tp.__optional_keys__)]
    hints = typing.get_type_hints(tp)
    for key, item in value.items():
        hint = hints.get(key)
        if hint is None or item is None:
            continue
        inner = _typed_dict(hint)
        if inner is not None:
            problems += missing_or_unknown(item, inner, f"{where}{key}.")
            continue
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is list and args and _typed_dict(args[0]):
            for i, x in enumerate(item):
                problems += missing_or_unknown(x, _typed_dict(args[0]), f"{where}{key}[{i}].")
        elif origin is dict and len(args) == 2 and _typed_dict(args[1]):
            for k, x in item.items():
                problems += missing_or_unknown(x, _typed_dict(args[1]), f"{where}{key}.{k}.")
    return problems
