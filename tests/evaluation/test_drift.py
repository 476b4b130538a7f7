"""Drift figures: linear CKA and intruder dimensions, checked on matrices whose answer is known."""

import numpy as np
import pytest
import torch

from finetune_compare.evaluation.drift import intruders, layer_type, linear_cka


def test_cka_is_one_for_the_same_representation_up_to_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_low_for_unrelated_representations():
    rng = np.random.default_rng(1)
    assert linear_cka(rng.normal(size=(500, 8)), rng.normal(size=(500, 8))) < 0.1


def test_an_unchanged_matrix_has_no_intruders_and_is_not_counted():
    w = {"layer.0.attention.self.query": torch.randn(32, 32, dtype=torch.float64)}
    found = intruders(w, dict(w), {}, top_k=10, epsilon=0.5)
    assert found["total"] == 0 and found["matrices_changed"] == 0


def test_a_new_dominant_direction_is_an_intruder():
    torch.manual_seed(0)
    base = torch.randn(64, 64, dtype=torch.float64)
    u0 = torch.linalg.svd(base).U
    # a direction orthogonal to the base's first 32 singular vectors' span is still in the base's full basis, so
    # the "new" direction is a mix of many base vectors: its best cosine with any one of them is small
    new = u0[:, 32:] @ torch.ones(32, dtype=torch.float64) / 32 ** 0.5
    tuned = base + 50 * torch.outer(new, torch.randn(64, dtype=torch.float64))
    found = intruders({"layer.0.output.dense": base}, {"layer.0.output.dense": tuned}, {}, top_k=1, epsilon=0.5)
    assert found == {"total": 1, "per_layer_type": {"output.dense": 1}, "matrices_changed": 1, "top_k": 1,
                     "epsilon": 0.5}
    small = base + 1e-3 * torch.outer(new, torch.randn(64, dtype=torch.float64))  # a nudge: directions kept
    assert intruders({"a": base}, {"a": small}, {}, top_k=10, epsilon=0.5)["total"] == 0


def test_a_frozen_layer_kept_in_bf16_is_not_a_change():
    base = torch.randn(16, 16)
    assert intruders({"a": base}, {"a": base.to(torch.bfloat16)}, {}, 5, 0.5)["matrices_changed"] == 0


def test_layer_types_name_a_kind_of_matrix_in_every_layer():
    assert layer_type("encoder.layer.11.attention.self.value") == "attention.self.value"
    assert layer_type("pooler.dense") == "pooler.dense"
