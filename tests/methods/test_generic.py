"""Any peft type by its peft name (src/finetune_compare/methods/generic.py): peft's config class's fields as settings,
peft's validation, refusals by name, the head and targets we set, a comparison that trains one, AdaLoRA's wiring."""

import dataclasses
import json

import pytest
import torch

from finetune_compare import Config, ConfigError
from finetune_compare.cli import main
from finetune_compare.config import describe_keys, load_config
from finetune_compare.errors import ModelError
from finetune_compare.methods import get_method
from finetune_compare.methods.registry import REGISTRY

from ..conftest import make_tiny_roberta, tiny_config

OURS = {"task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
        "inference_mode", "modules_to_save"}


def test_a_peft_type_named_in_a_config_is_a_method_with_peft_s_fields():
    from peft import OFTConfig

    assert "oft" not in REGISTRY
    config = Config(methods=["full", "oft"], oft_block_size=16)
    settings = config.method.settings_of("oft")
    peft_fields = {f.name for f in dataclasses.fields(OFTConfig)} - OURS
    assert {f.name for f in dataclasses.fields(settings)} == peft_fields | {"learning_rate"}
    assert settings.oft_block_size == 16 and settings.r == OFTConfig().r  # peft's default where not set
    assert config.learning_rate_for("oft") == settings.learning_rate == 0.003  # the range test's centre
    assert get_method("oft").generic and get_method("oft").search_space["oft_learning_rate"]["log"]
    # nested and flat are one value; config.yaml's keys read back in a process that has not registered it yet
    nested = load_config(overrides=["methods=[full, oft]", "method.oft.oft_block_size=16"])
    assert nested.method.settings_of("oft") == settings
    flat = config.to_dict()
    del REGISTRY["oft"]
    assert Config(**flat) == config


def test_a_peft_type_stays_out_of_configs_that_do_not_name_it():
    Config(methods=["full", "lokr"])
    assert "lokr" in REGISTRY
    assert not any(k.startswith("lokr_") for k in Config().to_dict())
    assert not any(k.startswith("lokr_") for k, *_ in describe_keys())  # the reference listing: docs/methods.md
    assert any(k.startswith("lokr_") for k in Config(lokr_r=4).to_dict())  # set, so recorded


@pytest.mark.parametrize("argv, message", [
    (["--set", "methods=[full, oft]", "--set", "method.oft.rank=8"],
     "error: --set: 'method.oft.rank': peft's OFTConfig has no field 'rank'; its fields: r, oft_block_size, "),
    (["--set", "methods=[full, oft]", "--set", "method.oft.r=8"],
     "error: method.oft: peft's OFTConfig rejects these settings: You can only specify either r (8) or "
     "oft_block_size (32), but not both"),
    (["--set", "methods=[full, prefix_tuning]"],
     "error: method 'prefix_tuning' cannot train an encoder classifier: needs a model that takes past key values"),
    (["--set", "methods=[full, adaption_prompt]"],
     "error: method 'adaption_prompt' cannot train an encoder classifier: made for decoders"),
    (["--set", "methods=[full, qlora]"], "error: config key 'methods': 'qlora' is not allowed; allowed: full, lora,"),
])
def test_bad_generic_settings_are_one_line(capsys, tmp_path, argv, message):
    code = main(["data", "--config", "quickstart", *argv, "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(message), err


def test_a_yaml_field_peft_does_not_have_names_the_class_and_its_fields(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("methods: [full, oft]\nmethod:\n  oft:\n    rank: 8\n")
    with pytest.raises(ConfigError, match=r"'method.oft.rank': peft's OFTConfig has no field 'rank'; its fields: r, "
                                          r"oft_block_size, module_dropout"):
        load_config(path)


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification

    path = make_tiny_roberta(tmp_path_factory.mktemp("generic-roberta"), id2label={0: "a", 1: "b", 2: "c"})
    return lambda: AutoModelForSequenceClassification.from_pretrained(str(path))


def test_we_set_the_task_the_head_and_explicit_targets_outside_the_head(roberta):
    model = get_method("hra").make_trainable(roberta(), Config(methods=["full", "hra"]).method, ["classifier"])
    config = model.peft_config["default"]
    assert config.task_type == "SEQ_CLS" and "classifier" in config.modules_to_save
    # peft's default layers for RoBERTa (query, value), as explicit names: never the head's own dense layer
    assert sorted(config.target_modules) == sorted(f"roberta.encoder.layer.{i}.attention.self.{m}"
                                                   for i in range(2) for m in ("query", "value"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trainable if ".classifier." in n}
    assert head and all(".modules_to_save." in n for n in head)  # the whole head, trained and saved
    assert {n for n, p in model.named_parameters() if ".classifier." in n and ".original_module." not in n} <= head


def test_a_setting_the_model_cannot_take_is_found_before_training(roberta):
    from finetune_compare.methods.targets import check_method

    # C3A's block size must divide the layer width (32 here): peft's reason, before any run trains
    method = Config(methods=["full", "c3a"], c3a_block_size=5).method
    with pytest.raises(ModelError, match=r"c3a cannot be applied to this model: peft says \"The block size should be "
                                         r"a factor of the input size"):
        check_method(roberta(), method, ["classifier"], "c3a")
    check_method(roberta(), Config(methods=["full", "c3a"], c3a_block_size=8).method, ["classifier"], "c3a")


def test_adalora_penalty_is_added_to_our_loss():
    from finetune_compare.training.trainer import classification_loss

    logits, labels = torch.zeros(2, 3), torch.tensor([0, 1])
    plain = classification_loss({"logits": logits}, labels)
    penalised = classification_loss({"logits": logits, "loss": torch.tensor(0.5), "loss_is_regularization": True},
                                    labels)
    assert penalised.item() == pytest.approx(plain.item() + 0.5)
    # a model's own loss (labels given to it) is never added: only the flagged penalty
    assert classification_loss({"logits": logits, "loss": torch.tensor(9.0)}, labels).item() == plain.item()


@pytest.fixture(scope="module")
def compared(tiny_bert, tmp_path_factory):
    from finetune_compare.experiments.commands.compare import ComparisonExperiment

    tmp = tmp_path_factory.mktemp("generic")
    config = tiny_config(tiny_bert, tmp, methods=["full", "adalora", "lokr"], num_epochs=1, num_runs=1,
                         save_model=True, adalora_init_r=4, adalora_target_r=2, adalora_tinit=1, adalora_tfinal=1)
    return config, ComparisonExperiment(config).run_multiple_runs()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["adalora", "lokr"])
def test_a_generic_method_trains_in_a_comparison_and_reloads(compared, method):
    import numpy as np

    from finetune_compare.evaluation.predict import predict_texts
    from finetune_compare.models.saving import load_trained

    config, result = compared
    run = next(r for r in result["runs"] if r["method"] == method)
    assert run["params"]["adapter"] > 0 and run["params"]["trainable"] == run["params"]["adapter"] + run["params"]["head"]
    assert run["training"]["learning_rate"] == config.learning_rate_for(method)
    assert f"{method}_vs_full" in result["comparisons"]
    run_dir = f"{config.output_dir}/runs/{method}/seed-{config.seed}"
    recorded = (tmp := __import__("yaml").safe_load(open(f"{run_dir}/config.yaml")))
    assert any(k.startswith(f"{method}_") for k in tmp) and recorded["methods"] == ["full", "adalora", "lokr"]
    del REGISTRY[method]  # a later process reads the saved run with nothing registered
    model, tokenizer, meta = load_trained(f"{run_dir}/model")
    rows = [json.loads(line) for line in open(f"{run_dir}/predictions.jsonl")]
    probs = predict_texts(model, tokenizer, [r["text"] for r in rows], meta["max_length"])
    expected = np.array([list(r["probabilities"].values()) for r in rows])  # the label schema's order, as probs
    assert np.abs(probs - expected).max() < 1e-4
    if method == "adalora":  # the budget was reallocated on the run's own step count: some ranks were cut
        config_saved = json.load(open(f"{run_dir}/model/adapter_config.json"))
        steps = run["training"]["steps"] if "steps" in run["training"] else None
        assert config_saved["total_step"] not in (None, 1000), config_saved["total_step"]
        assert steps is None or config_saved["total_step"] == steps
        assert config_saved["rank_pattern"], "AdaLoRA's allocation never ran"


def test_a_peft_type_s_flat_key_given_by_set_registers_it(capsys, tmp_path):
    """`--set oft_learning_rate=...` is read before the config is built: the key itself names the peft type."""
    code = main(["config", "--set", "methods=[full, oft]", "--set", "oft_learning_rate=1e-3", "--set",
                 "method.oft.oft_block_size=16"])
    out = capsys.readouterr().out
    assert code == 0 and "oft_learning_rate: 0.001" in out and "oft_block_size: 16" in out


def test_every_peft_type_gets_the_same_shape_of_search_space():
    """A log-uniform learning rate (one decade around the range test's centre, two around LoRA's default where the
    test has not run), the capacity knob where there is one, and the adapters' epochs: fair, tuned against tuned."""
    from finetune_compare.methods.lr_centres import LR_CENTRES
    from finetune_compare.methods.peft_types import REFUSED, peft_type_names
    from finetune_compare.methods.registry import method_names

    built_in = set(method_names())
    for name in peft_type_names():
        if name in REFUSED or name in built_in:
            continue
        method = get_method(name)
        rate = method.search_space[f"{name}_learning_rate"]
        assert rate["type"] == "float" and rate["log"], name
        width = 10 if name in LR_CENTRES else 100
        assert rate["high"] / rate["low"] == pytest.approx(width, rel=0.01), name
        assert Config(methods=["full", name]).learning_rate_for(name) == pytest.approx((rate["low"] * rate["high"]) ** 0.5, rel=0.01)
        assert method.search_space["num_epochs"] == get_method("lora").search_space["num_epochs"], name
    assert get_method("adalora").search_space["adalora_target_r"]["choices"] == [4, 8, 12]
    assert get_method("hra").search_space["hra_r"]["choices"] == [4, 8, 16]


def test_lora_s_settings_are_peft_s_names_and_the_seed_s_flat_keys_stay():
    """LoRA's fields are LoraConfig's (lora_alpha, lora_dropout): flat, nested and the earlier nested names agree."""
    flat = Config(lora_alpha=32, lora_dropout=0.05)
    nested = load_config(overrides=["method.lora.lora_alpha=32", "method.lora.lora_dropout=0.05"])
    earlier = load_config(overrides=["method.lora.alpha=32", "method.lora.dropout=0.05"])
    override = Config(method_overrides={"lora": {"alpha": 32}}).for_method("lora")
    assert flat.method == nested.method == earlier.method and override.lora_alpha == 32
    assert {f.name for f in dataclasses.fields(flat.method.settings_of("lora"))} >= {"r", "lora_alpha", "lora_dropout"}
    assert "lora_alpha" in flat.to_dict() and "lora_lora_alpha" not in flat.to_dict()


@pytest.mark.slow
def test_a_generic_method_s_run_exports_merged_with_its_settings_on_the_card(compared, tmp_path, capsys):
    """`export` in a process that has not registered the peft type: merged (LoKr merges), checked against the
    run's predictions, and the card lists its settings under peft's names."""
    config, _ = compared
    REGISTRY.pop("lokr", None)
    run_dir = f"{config.output_dir}/runs/lokr/seed-{config.seed}"
    assert main(["export", "--run", run_dir, "--output", str(tmp_path / "exported")]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "exported" / "export.json").read_text())
    assert record["merged"] is True and record["not_merged"] is None, record
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "lokr_r" in card and "lokr_learning_rate" in card
