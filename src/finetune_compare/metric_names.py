"""The overall metrics every run records and a verdict may be declared on: one definition for the config's
choices, the run records, the statistics, the tables and the reports. A leaf: it imports nothing of ours."""

from dataclasses import dataclass

OVERALL_METRICS = ("macro_f1", "accuracy", "macro_precision", "macro_recall")
DEFAULT_METRIC = "macro_f1"  # the verdict's and the search's default: balanced across classes, unlike accuracy

SOURCE_METRICS = ("macro_f1", "accuracy")  # reported per source (per group of your data)
GROUPS = ("overall", "per_class", "per_source", "domain")  # the test section's parts, as metrics.json nests them
DOMAIN_PARTS = ("in_domain", "out_of_domain")  # with held-out sources: the sources trained on, and the held-out ones


@dataclass(frozen=True)
class MetricKey:
    """One test score a run records: a metric over the whole test set or over one of its parts (a class, a source),
    read from where metrics.json keeps it nested (`test.per_source.sst5.macro_f1`). The statistics, tables and plots
    are keyed by it; `name` is the one flat spelling comparison.json's tables use ('macro_f1_sst5'), written from
    the key and never parsed back."""

    metric: str
    group: str = "overall"  # one of GROUPS
    part: str | None = None  # the class, source or DOMAIN_PARTS entry; None for an overall score

    def __post_init__(self):
        if (self.group not in GROUPS or (self.group == "overall") != (self.part is None)
                or (self.group == "domain" and self.part not in DOMAIN_PARTS)):
            raise ValueError(f"not a metric key: {self.metric!r} over {self.group!r} {self.part!r}")

    @property
    def name(self) -> str:
        return self.metric if self.part is None else f"{self.metric}_{self.part}"

    def value(self, test: dict):
        """This score in a run's test section, or None where the run has no such part."""
        if self.group == "overall":
            return test.get(self.metric)
        return ((test.get(self.group) or {}).get(self.part) or {}).get(self.metric)


def record_keys(test: dict) -> list[MetricKey]:
    """Every score a run's test section holds, in metrics.json's order: overall, per class (F1), per source."""
    domain = test.get("domain") or {}
    return ([MetricKey(m) for m in OVERALL_METRICS]
            + [MetricKey("f1", "per_class", c) for c in test.get("per_class") or {}]
            + [MetricKey(m, "per_source", s) for s in test.get("per_source") or {} for m in SOURCE_METRICS]
            + [MetricKey(m, "domain", p) for p in DOMAIN_PARTS if p in domain for m in OVERALL_METRICS])


def recorded_key(test: dict, name: str) -> MetricKey | None:
    """The key of the score a run's test section records under the flat `name` ('macro_f1_in_domain'), or None."""
    return next((k for k in record_keys(test) if k.name == name), None)


def domain_keys(metrics=SOURCE_METRICS) -> list[MetricKey]:
    return [MetricKey(m, "domain", p) for p in DOMAIN_PARTS for m in metrics]


def metric_groups(sources, labels, held_out: bool = False) -> dict[str, list[MetricKey]]:
    """The scores a comparison reports, by group; one source (or your own data without a group column) has no
    per-source group: it would only repeat the overall metrics. With held-out sources, a domain group (in-domain
    and out-of-domain); without, none (comparisons made before held-out sources existed keep their groups)."""
    groups = {
        "overall": [MetricKey(m) for m in OVERALL_METRICS],
        "per_class": [MetricKey("f1", "per_class", c) for c in labels],
        "per_source": [MetricKey(m, "per_source", s) for s in sources for m in SOURCE_METRICS] if len(sources) > 1
        else [],
    }
    if held_out:
        groups["domain"] = domain_keys()
    return groups


def keys_by_name(comparison: dict, default_labels=()) -> dict[str, MetricKey]:
    """comparison.json's flat names mapped to their keys, rebuilt forward from the sources, classes and held-out
    sources it records."""
    groups = metric_groups(comparison.get("sources") or [], comparison.get("labels") or default_labels)
    # every domain score, not only the tables' (a primary metric such as macro_recall_out_of_domain joins them)
    return {k.name: k for keys in [*groups.values(), domain_keys(OVERALL_METRICS)] for k in keys}


def primary_metric_names(sources, held_out: bool) -> list[str]:
    """The names primary_metric may take for data with these sources (groups): an overall metric, a per-source
    score, or with held-out sources an in-domain or out-of-domain one."""
    return ([*OVERALL_METRICS]
            + ([k.name for k in metric_groups(sources, ())["per_source"]] if len(sources) > 1 else [])
            + ([k.name for k in domain_keys(OVERALL_METRICS)] if held_out else []))
