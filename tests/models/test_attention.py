"""Training attention on CPU: the eager formula under dropout must be the same attention as SDPA, in bf16."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from finetune_compare.models.attention import NAME, use_training_attention


def _pair(config_cls, model_cls, dropout: float):
    cfg = config_cls(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=dropout, pad_token_id=1)
    torch.manual_seed(0)
    sdpa = model_cls(cfg)
    ours = model_cls(copy.deepcopy(cfg))
    ours.load_state_dict(sdpa.state_dict())
    assert use_training_attention(ours, "cpu") == "eager"
    return sdpa, ours


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 120, (3, 11))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # padded rows: the mask conversion must hide these keys
    mask[2, 3:] = 0
    return ids, mask, torch.tensor([0, 1, 2])


@pytest.mark.parametrize("classes", [(BertConfig, BertForSequenceClassification),
                                     (RobertaConfig, RobertaForSequenceClassification)])
def test_training_attention_matches_sdpa_with_padding(classes):
    # dropout 1e-7 takes the eager path while (almost surely) dropping nothing: the two must agree
    sdpa, ours = _pair(*classes, dropout=1e-7)
    sdpa.train()
    ours.train()
    ids, mask, labels = _batch()
    a = sdpa(input_ids=ids, attention_mask=mask, labels=labels)
    b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    a.loss.backward()
    b.loss.backward()
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    for (name, p), q in zip(sdpa.named_parameters(), ours.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name
    # padded tokens must not leak into the real ones
    ids2 = ids.clone()
    ids2[0, 6:] = 7
    with torch.no_grad():
        torch.manual_seed(2)
        c = ours(input_ids=ids2, attention_mask=mask).logits
    assert torch.allclose(b.logits, c, atol=1e-5)


def test_training_attention_keeps_dropout_and_evaluation_is_sdpa():
    sdpa, ours = _pair(BertConfig, BertForSequenceClassification, dropout=0.5)
    ids, mask, _ = _batch()
    ours.train()
    with torch.no_grad():
        first, second = (ours(input_ids=ids, attention_mask=mask).logits for _ in range(2))
    assert not torch.allclose(first, second)  # attention dropout is applied on the eager path
    ours.eval()
    sdpa.eval()
    with torch.no_grad():
        assert torch.allclose(ours(input_ids=ids, attention_mask=mask).logits,
                              sdpa(input_ids=ids, attention_mask=mask).logits, atol=1e-6)


def test_training_attention_saves_bf16_intermediates_under_autocast():
    """Why it exists: SDPA's CPU dropout path upcasts to fp32 and keeps fp32 (B, H, L, L) tensors for backward."""
    _, ours = _pair(BertConfig, BertForSequenceClassification, dropout=0.1)
    ours.train()
    ids, mask, labels = _batch()
    square = []

    def pack(t):
        if t.dim() == 4 and t.shape[-1] == t.shape[-2] == ids.shape[1]:
            square.append(t.dtype)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        ours(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    assert square and set(square) == {torch.bfloat16}


def test_only_cpu_training_switches_and_saved_config_names_no_custom_attention(tmp_path):
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    gpu = BertForSequenceClassification(copy.deepcopy(cfg))
    assert use_training_attention(gpu, "cuda") == "sdpa"
    assert gpu.config._attn_implementation == "sdpa"
    cpu = BertForSequenceClassification(cfg)
    assert use_training_attention(cpu, "cpu") == "eager"
    assert cpu.config._attn_implementation == NAME
    cpu.save_pretrained(tmp_path)
    # a checkpoint must load anywhere, without this package's registration
    assert NAME not in (tmp_path / "config.json").read_text()
    assert use_training_attention(torch.nn.Linear(2, 2), "cpu") == "model's own"
