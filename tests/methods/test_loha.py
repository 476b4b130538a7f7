"""LoHa, the method added as one file (src/finetune_compare/methods/loha.py): accounting on a random RoBERTa-base,
its settings in a config, and one training step that moves only its factors and the head."""

import pytest
import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

from finetune_compare import Config, ConfigError
from finetune_compare.config import MethodConfig, load_config
from finetune_compare.methods import get_method
from finetune_compare.methods.targets import check_method
from finetune_compare.models.accounting import count_parameters

HEAD = ["classifier"]


def roberta_base():
    torch.manual_seed(0)
    return RobertaForSequenceClassification(RobertaConfig(num_labels=3))


@pytest.mark.slow
def test_loha_accounting_on_roberta_base():
    model = get_method("loha").make_trainable(roberta_base(), MethodConfig(loha_r=8), HEAD)
    counts = count_parameters(model, HEAD)
    # per adapted 768x768 layer: two factor pairs, each (768 x r) + (r x 768); query and value in 12 layers
    assert counts["adapter"] == 12 * 2 * 2 * 8 * (768 + 768) == 589_824  # 2x LoRA's 294,912 at the same r
    assert counts["head"] == 592_899 and counts["trainable"] == counts["adapter"] + counts["head"]
    assert counts["total"] == 124_647_171 + 589_824
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("hada_w" in n or "classifier" in n for n in names)


def test_loha_settings_nested_flat_and_per_method():
    cfg = load_config(None, ["method.loha.r=4", "methods=[full, loha]"])
    assert cfg.loha_r == 4 and cfg.method.settings_of("loha").r == 4 and cfg.learning_rate_for("loha") == 5e-4
    assert Config(loha_alpha=32).method.settings_of("loha").alpha == 32
    assert Config(method_overrides={"loha": {"r": 16}}).for_method("loha").loha_r == 16
    with pytest.raises(ConfigError, match="config key 'loha_r': must be >= 1, got 0"):
        Config(loha_r=0)
    with pytest.raises(ConfigError, match="'method.loha.feedforward_modules': loha has no setting 'feedforward_modules'"
                                          "; it is a setting of method.ia3.feedforward_modules"):
        load_config(None, ["method.loha.feedforward_modules=[output.dense]"])


@pytest.mark.slow
def test_loha_rank_is_checked_against_the_layers():
    from finetune_compare.errors import ModelError

    with pytest.raises(ModelError, match="loha_r 1000 is larger than layer"):
        check_method(roberta_base(), MethodConfig(loha_r=1000), HEAD, "loha")


@pytest.mark.slow
def test_one_loha_step_moves_only_its_factors_and_the_head():
    model = get_method("loha").make_trainable(roberta_base(), MethodConfig(), HEAD)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batch = {"input_ids": torch.randint(3, 1000, (4, 12)), "labels": torch.tensor([0, 1, 2, 1])}
    model(**batch).loss.backward()
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all("hada_w" in n or "classifier" in n for n in moved)
    assert any("hada_w" in n for n in moved) and any("classifier" in n for n in moved)

