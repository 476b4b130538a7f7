"""The fairness checks on constructed studies: a best value at an edge of its search fires and one in the middle does
not; a widened space widens once, by half the range on the edge's side; a rising expected-validation curve and a
budget that more than a quarter of a method's runs ended still improving are each said beside the verdict."""

import math

import pytest

from finetune_compare.analysis.fairness_checks import (
    deciding_search, fairness_checks, fairness_clause, saturation, search_edges, short_budget, widened_space)
from finetune_compare.analysis.tuning_curves import expected_validation_curve
from finetune_compare.layout import Layout
from finetune_compare.utils.io import write_json

LR = {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}
RANK = {"type": "categorical", "choices": [4, 8, 16, 32]}
DROPOUT = {"type": "float", "low": 0.0, "high": 0.2}
EPOCHS = {"type": "int", "low": 3, "high": 15}


@pytest.mark.parametrize("value, side", [(9.5e-4, "high"), (1.2e-4, "low"), (3.2e-4, None), (7.5e-4, None)])
def test_a_log_range_edge_is_the_outer_tenth_on_the_log_scale(value, side):
    # 7.5e-4 is in the outer tenth on a linear scale (0.72 of the way) but not on the log scale (0.875)
    edges = search_edges({"lr": LR}, {"lr": value})
    assert [e["side"] for e in edges] == ([side] if side else [])


@pytest.mark.parametrize("value, side", [(32, "high"), (4, "low"), (8, None), (16, None)])
def test_the_largest_or_smallest_numeric_choice_is_an_edge(value, side):
    assert [e["side"] for e in search_edges({"r": RANK}, {"r": value})] == ([side] if side else [])


def test_two_choices_and_unordered_choices_have_no_edge():
    space = {"bs": {"type": "categorical", "choices": [16, 32]},
             "targets": {"type": "categorical", "choices": ["query,value", "query,key,value"]}}
    assert search_edges(space, {"bs": 32, "targets": "query,value"}) == []


def test_a_setting_in_the_middle_of_every_range_fires_nothing():
    space = {"lr": LR, "r": RANK, "dropout": DROPOUT, "epochs": EPOCHS}
    assert search_edges(space, {"lr": 3e-4, "r": 8, "dropout": 0.1, "epochs": 9}) == []


def test_widening_adds_half_the_range_on_the_edge_side_once():
    space = {"lr": LR, "r": RANK, "epochs": EPOCHS, "dropout": DROPOUT}
    edges = search_edges(space, {"lr": 9.9e-4, "r": 4, "epochs": 15, "dropout": 0.001})
    wide, notes = widened_space(space, edges, {"dropout": (0, 1), "r": (1, None)})
    assert wide["lr"]["low"] == 1e-4 and math.isclose(wide["lr"]["high"], 1e-3 * math.sqrt(10), rel_tol=1e-3)
    assert wide["r"]["choices"] == [2, 4, 8, 16, 32]  # one more step of the doubling sequence
    assert (wide["epochs"]["low"], wide["epochs"]["high"]) == (3, 21)
    assert wide["dropout"] == DROPOUT  # at its bound 0: cannot move, and the note says so
    assert any("dropout" in n and "not widened" in n for n in notes) and len(notes) == 4
    assert space["lr"] == LR  # the first search's space is left as it was


def test_widening_at_a_bound_keeps_the_range_inside_it():
    space = {"warmup": {"type": "float", "low": 0.0, "high": 0.8}}
    wide, _ = widened_space(space, search_edges(space, {"warmup": 0.79}), {"warmup": (0, 1)})
    assert wide["warmup"]["high"] == 1


def test_the_better_search_decides():
    first, wider = {"best_value": 0.60}, {"best_value": 0.62}
    assert deciding_search(first, wider) is wider
    assert deciding_search(first, {"best_value": 0.58}) is first and deciding_search(first, None) is first


def test_saturation_reads_the_last_step_of_the_curve():
    rising = expected_validation_curve([0.30, 0.32, 0.35, 0.40, 0.55])  # one trial far above the rest
    flat = expected_validation_curve([0.60, 0.601, 0.6005, 0.6002, 0.6001, 0.6003])
    assert saturation(rising)["rising"] and saturation(rising)["last_gain"] > 0.002
    assert not saturation(flat)["rising"]
    assert saturation(flat[:1]) is None


@pytest.mark.parametrize("last, runs, fires", [(3, 12, False), (4, 12, True), (0, 5, False), (2, 5, True)])
def test_a_budget_is_short_when_more_than_a_quarter_of_runs_end_improving(last, runs, fires):
    assert bool(short_budget({"best_at_last_evaluation": last, "runs": runs})) is fires


def _study(folder, method, best, edges, search=None, widened=None, values=(0.5, 0.55, 0.6)):
    summary = {"method": method, "trials": len(values), "best_value": best, "best_params": {"x": 1}, "edges": edges,
               "expected_validation": {"curve": expected_validation_curve(list(values))},
               **({"search": search} if search else {}), **({"widened": widened} if widened else {})}
    path = Layout(folder).study_summary(method, search)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, summary)


def test_the_checks_read_a_constructed_study_folder(tmp_path):
    edge = [{"key": "lora_r", "value": 32, "side": "high", "searched": "choices 4, 8, 16, 32"}]
    _study(tmp_path, "lora", 0.60, edge, widened=["lora_r: choices [4, 8, 16, 32] -> [4, 8, 16, 32, 64]"])
    _study(tmp_path, "lora", 0.62, [], search="extended")
    _study(tmp_path, "full", 0.64, [], values=(0.6, 0.6, 0.6, 0.6))
    eff = {"full": {"best_at_last_evaluation": 0, "runs": 8}, "lora": {"best_at_last_evaluation": 3, "runs": 8}}
    found = fairness_checks(tmp_path, ["full", "lora"], eff)
    assert found["lora"]["extension"]["decided_by"] == "widened"
    assert found["lora"]["short_budget"] == {"runs": 8, "best_at_last": 3}
    assert "short_budget" not in found["full"] and found["full"]["edges"] == []
    assert not found["full"]["saturation"]["rising"]
    text = fairness_clause("lora", "full", found)
    assert "widened once" in text and "6 trials in all" in text and "0.6200 against 0.6000" in text
    assert "The budget may have been short for lora: 3 of its 8 runs" in text
    assert fairness_clause("full", "full", {"full": found["full"]}) is None  # nothing to say about full


def test_an_edge_without_tune_extend_is_said_with_the_way_to_widen(tmp_path):
    edge = [{"key": "learning_rate", "value": 9.8e-5, "side": "high", "searched": "1e-05 to 0.0001 (log)"}]
    _study(tmp_path, "full", 0.64, edge)
    text = fairness_clause("lora", "full", fairness_checks(tmp_path, ["full", "lora"], {}))
    assert "full's best setting lies at an edge of its search (learning_rate 9.8e-05 at the high end" in text
    assert "tune_extend: true" in text


def test_the_recorded_decision_is_what_a_report_reads():
    # recorded when the runs took their settings: a later rule or a rounding cannot change it
    assert deciding_search({"best_value": 0.60, "decided_by": "first"}, {"best_value": 0.61})["best_value"] == 0.60
    wider = {"best_value": 0.59}
    assert deciding_search({"best_value": 0.60, "decided_by": "widened"}, wider) is wider


def test_an_edge_value_is_said_in_three_significant_digits():
    edges = search_edges({"lr": LR}, {"lr": 0.00097369990766817697})
    assert "lr 0.000974 at the high end of 0.0001 to 0.001 (log)" in fairness_clause(
        "m", None, {"m": {"edges": edges}})
