"""Shared fixtures: offline environment, one torch thread, tiny random models built from configs."""

from __future__ import annotations

import os

# Before any HF import: no hub retries (~27 s each), no telemetry, quiet tokenizers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["TRANSFORMERS_VERBOSITY"] = "error"
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# Ray reads this when imported: a Ray any test starts then takes 127.0.0.1 as its address and listens there only
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# mixed_precision auto's probe caches its measurement per machine: tests keep theirs out of the user's ~/.cache
import tempfile  # noqa: E402

os.environ["FINETUNE_COMPARE_CACHE"] = tempfile.mkdtemp(prefix="finetune-compare-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

# Two threads on a busy 2-core machine were measured 25x slower than one.
torch.set_num_threads(1)

from transformers.utils import logging as _hf_logging  # noqa: E402

_hf_logging.disable_progress_bar()

from finetune_compare import Config  # noqa: E402

FULL_DATA_DIR = os.environ.get("FINETUNE_COMPARE_DATA_DIR")
# Wider than BERT's 0.02: a random 32-wide encoder then gives input-dependent features,
# so frozen-encoder methods (LoRA, head-only) can learn something in a few steps.
INIT_RANGE = 0.2


def _embedded_texts() -> list[str]:
    from finetune_compare.data.loading import read_embedded
    from finetune_compare.data.sources import SOURCES

    return [r.text for s in SOURCES.values() for r in read_embedded(s, "train")]


def make_tiny_bert(path, with_head_labels: dict | None = None, max_positions: int = 128, dropout: float = 0.1):
    """A 2-layer BERT encoder (no classification head) with MiniLM's real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from finetune_compare.models.resolve import embedded_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_minilm_path()))
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=max_positions,
                     initializer_range=INIT_RANGE, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def make_tiny_roberta(path, id2label: dict | None = None, max_positions: int = 130):
    """A 2-layer RoBERTa with a byte-level BPE tokenizer trained on the embedded texts.

    With `id2label`, it is saved as a sequence classifier with that 3-way head (to test
    head alignment); otherwise as a bare encoder.
    """
    import tempfile
    from pathlib import Path

    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaModel, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_embedded_texts(), vocab_size=800, min_frequency=2, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        lines = Path(tmp, "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    # transformers 5: vocab=/merges= (vocab_file=/merges_file= silently builds a 5-token vocabulary)
    tokenizer = RobertaTokenizerFast(vocab=bpe.get_vocab(), merges=merges)
    cfg = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_positions, pad_token_id=1,
                        initializer_range=INIT_RANGE)
    torch.manual_seed(0)
    if id2label:
        cfg.num_labels = len(id2label)
        cfg.id2label = dict(id2label)
        cfg.label2id = {v: k for k, v in id2label.items()}
        model = RobertaForSequenceClassification(cfg)
    else:
        model = RobertaModel(cfg)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    return str(make_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta")))


@pytest.fixture(scope="session")
def tiny_roberta_sentiment(tmp_path_factory):
    """A RoBERTa whose 3-way head is named negative/neutral/positive, in a shuffled order."""
    return str(make_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta-sent"),
                                 id2label={0: "positive", 1: "negative", 2: "neutral"}))


# a search space that tunes in seconds: one epoch at batch 8, one learning rate per method (and LoRA's rank fixed)
FAST_SEARCH_SPACE = {
    "common": {"batch_size": {"type": "categorical", "choices": [8]},
               "num_epochs": {"type": "categorical", "choices": [1]}},
    "full": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
             "weight_decay": None, "warmup_ratio": None},
    "lora": {"lora_learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
             "lora_r": {"type": "categorical", "choices": [4]}, "lora_alpha_multiple": None,
             "lora_dropout": None, "lora_target_modules": None}}


def tiny_config(model_name: str, tmp_path, **overrides) -> Config:
    """Small, fast, deterministic training settings for tiny models on the embedded data."""
    values = dict(
        model_name=model_name, data_source="embedded", samples_per_class=40, test_samples_per_class=20,
        val_fraction=0.2, max_length=64, num_epochs=2, batch_size=8, eval_batch_size=32, learning_rate=1e-3,
        lora_learning_rate=3e-3, evaluations_per_epoch=2, patience=0, mixed_precision="no", num_runs=1,
        seed=7, output_dir=str(tmp_path / "out"), num_threads=1,
        tracking_mlflow=False, tracking_wandb=False,  # tracking has its own tests
    )
    values.update(overrides)
    return Config(**values)


@pytest.fixture
def make_config(tmp_path):
    def factory(model_name: str, **overrides) -> Config:
        return tiny_config(model_name, tmp_path, **overrides)

    return factory


def headless_chromium(profile_dir) -> list[str] | None:
    """The command prefix for headless Chromium with no network or first-run work, or None when not installed."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        return None
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile_dir}", "--virtual-time-budget=5000"]


@pytest.fixture(autouse=True)
def _peft_types_registered_by_name_stay_in_their_test():
    """A peft type registered by name or a method variant (the registry is process-wide) is dropped before and after each test, so a test
    sees the built-in methods only, whatever ran before it (a peft type named again is registered again)."""
    from finetune_compare.methods.registry import REGISTRY

    def drop():
        for name in [n for n, m in REGISTRY.items() if m.generic or m.variant_of]:
            del REGISTRY[name]

    drop()
    yield
    drop()
