"""The overall metrics every run records and a verdict may be declared on: one definition for the config's
choices, the run records, the statistics, the tables and the reports. A leaf: it imports nothing of ours."""

from dataclasses import dataclass

OVERALL_METRICS = ("macro_f1", "accuracy", "macro_precision", "macro_recall")
DEFAULT_METRIC = "macro_f1"  # the verdict's and the search's default: balanced across classes, unlike accuracy

SOURCE_METRICS = ("macro_f1", "accuracy")  # reported per source (per group of your data)
GROUPS = ("overall", "per_class", "per_source")  # the test section's parts, as metrics.json nests them


@dataclass(frozen=True)
class MetricKey:
    """One test score a run records: a metric over the whole test set or over one of its parts (a class, a source),
    read from where metrics.json keeps it nested (`test.per_source.sst5.macro_f1`). The statistics, tables and plots
    are keyed by it; `name` is the one flat spelling comparison.json's tables use ('macro_f1_sst5'), written from
    the key and never parsed back."""

    metric: str
    group: str = "overall"  # one of GROUPS
    part: str | None = None  # the class or source; None for an overall score

    def __post_init__(self):
        if self.group not in GROUPS or (self.group == "overall") != (self.part is None):
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
    return ([MetricKey(m) for m in OVERALL_METRICS]
            + [MetricKey("f1", "per_class", c) for c in test.get("per_class") or {}]
            + [MetricKey(m, "per_source", s) for s in test.get("per_source") or {} for m in SOURCE_METRICS])


def metric_groups(sources, labels) -> dict[str, list[MetricKey]]:
    """The scores a comparison reports, by group; one source (or your own data without a group column) has no
    per-source group: it would only repeat the overall metrics."""
    return {
        "overall": [MetricKey(m) for m in OVERALL_METRICS],
        "per_class": [MetricKey("f1", "per_class", c) for c in labels],
        "per_source": [MetricKey(m, "per_source", s) for s in sources for m in SOURCE_METRICS] if len(sources) > 1
        else [],
    }


def keys_by_name(comparison: dict, default_labels=()) -> dict[str, MetricKey]:
    """comparison.json's flat names mapped to their keys, rebuilt forward from the sources and classes it records."""
    groups = metric_groups(comparison.get("sources") or [], comparison.get("labels") or default_labels)
    return {k.name: k for keys in groups.values() for k in keys}
