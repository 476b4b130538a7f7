"""The whole command's run lines: a finished run shows its score on the declared primary metric, whichever it is."""

import types

import pytest

from finetune_compare.experiments.execution.command_progress import score_text


def _record(test):
    return types.SimpleNamespace(test=test)


TEST = {"macro_f1": 0.61, "accuracy": 0.62, "per_source": {"imdb": {"macro_f1": 0.70, "accuracy": 0.71}},
        "domain": {"held_out": ["tweeteval"], "in_domain": {"macro_f1": 0.66, "accuracy": 0.67},
                   "out_of_domain": {"macro_f1": 0.52, "accuracy": 0.55}}}


@pytest.mark.parametrize("metric, shown", [("macro_f1", "0.6100"), ("macro_f1_in_domain", "0.6600"),
                                           ("accuracy_out_of_domain", "0.5500"), ("macro_f1_imdb", "0.7000")])
def test_the_line_reads_the_primary_metric_wherever_the_test_section_holds_it(metric, shown):
    config = types.SimpleNamespace(experiment=types.SimpleNamespace(primary_metric=metric))
    assert score_text(config, _record(TEST)) == f"test {metric} {shown}"
