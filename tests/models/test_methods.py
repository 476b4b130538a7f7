import pytest
import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

from finetune_compare import Config
from finetune_compare.errors import ModelError
from finetune_compare.models.accounting import count_parameters
from finetune_compare.models.base import BaseModel
from finetune_compare.models.methods import METHODS, get_method, resolve_target_modules


class _Provider(BaseModel):
    def load_tokenizer(self):  # pragma: no cover - not used here
        raise NotImplementedError

    def load_model(self):  # pragma: no cover
        raise NotImplementedError


@pytest.fixture(scope="module")
def roberta_base():
    """RoBERTa-base dimensions, random weights: no download needed."""
    torch.manual_seed(0)
    return lambda: RobertaForSequenceClassification(RobertaConfig(num_labels=3))


def test_lora_parameter_accounting_matches_the_paper(roberta_base):
    model = roberta_base()
    head = _Provider(Config()).head_module_names(model)
    assert head == ["classifier"]
    full = count_parameters(METHODS["full"].apply(model, Config(), head), head)
    assert full["head"] == 592_899 and full["trainable"] == full["total"] == 124_647_171
    lora = count_parameters(METHODS["lora"].apply(roberta_base(), Config(lora_r=8), head), head)
    assert lora["adapter"] == 294_912  # the LoRA paper's "0.3M" for r=8 on query,value
    assert lora["head"] == 592_899
    assert lora["trainable"] == 887_811
    assert lora["total"] == 124_647_171 + 294_912


def test_dense_target_does_not_wrap_the_head(roberta_base):
    model = roberta_base()
    targets = resolve_target_modules(model, ["dense"], ["classifier"])
    assert "classifier.dense" not in targets and len(targets) == 36  # 12 x (attention.output, intermediate, output)
    peft_model = METHODS["lora"].apply(model, Config(lora_target_modules=["dense"]), ["classifier"])
    head_params = {n: p.requires_grad for n, p in peft_model.named_parameters()
                   if "classifier" in n and "original_module" not in n}
    assert head_params and all(head_params.values())  # the head is trained in full
    assert not any("classifier" in n and "lora_" in n for n, _ in peft_model.named_parameters())


def test_target_matching_nothing_is_an_error(roberta_base):
    with pytest.raises(ModelError) as err:
        resolve_target_modules(roberta_base(), ["query", "q_proj"], ["classifier"])
    assert "lora_target_modules entry 'q_proj' matches no layer of the encoder" in str(err.value)
    assert "query" in str(err.value) and "value" in str(err.value)
    with pytest.raises(ModelError, match="matches only the classification head"):
        resolve_target_modules(roberta_base(), ["out_proj"], ["classifier"])


def test_head_only_and_dora(roberta_base):
    head_only = count_parameters(METHODS["head"].apply(roberta_base(), Config(), ["classifier"]), ["classifier"])
    assert head_only["trainable"] == head_only["head"] == 592_899
    dora = count_parameters(METHODS["dora"].apply(roberta_base(), Config(), ["classifier"]), ["classifier"])
    assert dora["adapter"] > 294_912  # plus one magnitude per output feature
    with pytest.raises(ModelError, match="unknown method 'qlora'"):
        get_method("qlora")
