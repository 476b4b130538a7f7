"""The compatibility matrix (src/finetune_compare/models/peft_matrix.py) and docs/methods.md's table, which is written
from it: the test fails when they disagree, when a type we refuse would in fact work, or when a type we accept fails
anywhere but at build (a default that does not fit a width: a setting to change, said in one line)."""

from pathlib import Path

import pytest

from finetune_compare.methods.peft_types import REFUSED, peft_type_names
from finetune_compare.models.peft_matrix import ROBERTA, matrix, table, table_in

DOC = Path(__file__).resolve().parents[2] / "docs" / "methods.md"


@pytest.fixture(scope="module")
def outcomes():
    return matrix()


@pytest.mark.slow
def test_docs_table_is_the_matrix(outcomes):
    assert table_in(DOC) == table(outcomes), ("docs/methods.md's table differs from the matrix: "
                                             "python -m finetune_compare.models.peft_matrix --write docs/methods.md")


@pytest.mark.slow
def test_every_peft_type_is_tried_and_what_we_accept_fails_only_on_a_setting(outcomes):
    assert {o.method for o in outcomes} == set(peft_type_names())
    by_type = {}
    for o in outcomes:
        by_type.setdefault(o.method, []).append(o)
    for name, rows in by_type.items():
        if name in REFUSED:
            assert not any(o.works for o in rows), name
            continue
        for o in rows:  # a failure past build (training, accounting, reload) would be ours to fix or refuse
            assert o.works or o.problem.startswith("build: ModelError: "), (name, o.problem)
        assert any(o.works for o in rows) or "set method." in rows[0].problem, (name, [o.problem for o in rows])
    works = sum(any(o.works for o in rows) for rows in by_type.values())
    assert works >= 30, works


@pytest.mark.slow
def test_roberta_base_counts_match_closed_forms(outcomes):
    at_base = {o.method: o.trainable_base for o in outcomes if o.architecture == ROBERTA}
    head = 768 * 768 + 768 + 768 * 3 + 3  # RobertaClassificationHead: dense + out_proj
    assert at_base["lora"] == 12 * 2 * (768 * 8 + 8 * 768) + head == 887_811  # r 8 on query and value
    assert at_base["vera"] == 12 * 2 * (1024 + 768) + head == 635_907  # VeRA's scaling vectors at r 1024


@pytest.mark.slow
def test_refused_types_fail_in_peft_itself():
    """What we refuse for a mechanical reason fails when peft is asked directly (the others are refused for what
    they are: xlora mixes trained adapters, trainable_tokens trains embedding rows)."""
    import torch
    from peft import get_peft_model
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    from transformers import AutoModelForSequenceClassification

    from finetune_compare.models.resolve import embedded_minilm_path

    base = AutoModelForSequenceClassification.from_pretrained(str(embedded_minilm_path()), num_labels=3)
    ids = torch.randint(5, 100, (2, 8))
    for name in ("adaption_prompt", "prefix_tuning", "cartridge", "multitask_prompt_tuning", "poly", "cpt", "shadow"):
        cls = PEFT_TYPE_TO_CONFIG_MAPPING[name.upper()]
        extra = {"num_virtual_tokens": 4} if "num_virtual_tokens" in cls.__dataclass_fields__ else {}
        with pytest.raises(Exception):
            model = get_peft_model(base, cls(task_type="SEQ_CLS", **extra))
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
