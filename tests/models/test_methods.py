import pytest
import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

from finetune_compare import Config
from finetune_compare.config import MethodConfig, ModelConfig
from finetune_compare.errors import ModelError
from finetune_compare.models.accounting import count_parameters
from finetune_compare.models.base import BaseModel
from finetune_compare.methods import get_method
from finetune_compare.methods.targets import resolve_target_modules


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


@pytest.mark.slow
def test_lora_parameter_accounting_matches_the_paper(roberta_base):
    model = roberta_base()
    head = _Provider(ModelConfig()).head_module_names(model)
    assert head == ["classifier"]
    full = count_parameters(get_method("full").make_trainable(model, MethodConfig(), head), head)
    assert full["head"] == 592_899 and full["trainable"] == full["total"] == 124_647_171
    lora = count_parameters(get_method("lora").make_trainable(roberta_base(), MethodConfig(lora_r=8), head), head)
    assert lora["adapter"] == 294_912  # the LoRA paper's "0.3M" for r=8 on query,value
    assert lora["head"] == 592_899
    assert lora["trainable"] == 887_811
    assert lora["total"] == 124_647_171 + 294_912


@pytest.mark.slow
def test_dense_target_does_not_wrap_the_head(roberta_base):
    model = roberta_base()
    targets = resolve_target_modules(model, ["dense"], ["classifier"])
    assert "classifier.dense" not in targets and len(targets) == 36  # 12 x (attention.output, intermediate, output)
    peft_model = get_method("lora").make_trainable(model, MethodConfig(lora_target_modules=["dense"]), ["classifier"])
    head_params = {n: p.requires_grad for n, p in peft_model.named_parameters()
                   if "classifier" in n and "original_module" not in n}
    assert head_params and all(head_params.values())  # the head is trained in full
    assert not any("classifier" in n and "lora_" in n for n, _ in peft_model.named_parameters())


@pytest.mark.slow
def test_target_matching_nothing_is_an_error(roberta_base):
    with pytest.raises(ModelError) as err:
        resolve_target_modules(roberta_base(), ["query", "q_proj"], ["classifier"])
    assert "lora_target_modules entry 'q_proj' matches no layer of the encoder" in str(err.value)
    assert "query" in str(err.value) and "value" in str(err.value)
    with pytest.raises(ModelError, match="matches only the classification head"):
        resolve_target_modules(roberta_base(), ["out_proj"], ["classifier"])


@pytest.mark.slow
def test_head_only_and_dora(roberta_base):
    head_only = count_parameters(get_method("head").make_trainable(roberta_base(), MethodConfig(), ["classifier"]),
                                 ["classifier"])
    assert head_only["trainable"] == head_only["head"] == 592_899
    dora = count_parameters(get_method("dora").make_trainable(roberta_base(), MethodConfig(), ["classifier"]), ["classifier"])
    assert dora["adapter"] > 294_912  # plus one magnitude per output feature
    with pytest.raises(ModelError, match="unknown method 'qlora'"):
        get_method("qlora")


@pytest.mark.slow
def test_ia3_accounting_on_roberta_base(roberta_base):
    """IA3 scales keys and values (768 each) and the input of both output.dense layers (768 and 3072), per layer."""
    head = ["classifier"]
    ia3 = count_parameters(get_method("ia3").make_trainable(roberta_base(), MethodConfig(), head), head)
    assert ia3["adapter"] == 12 * (768 + 768 + 768 + 3072)
    assert ia3["head"] == 592_899 and ia3["trainable"] == ia3["adapter"] + ia3["head"]
    assert ia3["total"] == 124_647_171 + ia3["adapter"]


@pytest.mark.slow
def test_vera_accounting_matches_the_paper(roberta_base):
    """VeRA r=1024 on query and value: lambda_d (r) + lambda_b (768) per layer and target; the paper's 0.043M."""
    head = ["classifier"]
    model = get_method("vera").make_trainable(roberta_base(), MethodConfig(vera_r=1024), head)
    vera = count_parameters(model, head)
    assert vera["adapter"] == 12 * 2 * (1024 + 768) == 43_008
    assert vera["head"] == 592_899 and vera["trainable"] == vera["adapter"] + vera["head"]
    # the shared random projections are frozen buffers, not trained parameters
    assert not any("vera_A" in n or "vera_B" in n for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.slow
def test_every_registered_method_trains_and_saves_through_the_registry(roberta_base):
    from finetune_compare.methods import REGISTRY

    for name, spec in REGISTRY.items():
        model = get_method(name).make_trainable(roberta_base(), MethodConfig(), ["classifier"])
        counts = count_parameters(model, ["classifier"])
        assert counts["trainable"] > 0, name
        assert (counts["adapter"] > 0) == (spec.adapts_layers and name != "full"), name
        assert Config().learning_rate_for(name) == getattr(Config(), spec.learning_rate_key)


def test_a_registered_method_is_a_config_choice_at_once():
    from finetune_compare.errors import ConfigError
    from finetune_compare.methods import REGISTRY, Method, register_method
    from finetune_compare.methods.head import apply_head_only

    with pytest.raises(ConfigError, match="'bitfit' is not allowed"):
        Config(methods=["full", "bitfit"])
    register_method(Method("bitfit", "biases only", apply_head_only))
    try:
        assert Config(methods=["full", "bitfit"]).methods == ["full", "bitfit"]
        assert get_method("bitfit").name == "bitfit"
    finally:
        del REGISTRY["bitfit"]
