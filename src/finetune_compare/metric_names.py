"""The overall metrics every run records and a verdict may be declared on: one definition for the config's
choices, the run records, the statistics, the tables and the reports. A leaf: it imports nothing."""

OVERALL_METRICS = ("macro_f1", "accuracy", "macro_precision", "macro_recall")
DEFAULT_METRIC = "macro_f1"  # the verdict's and the search's default: balanced across classes, unlike accuracy
