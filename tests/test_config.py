import dataclasses

import pytest
import yaml

from finetune_compare import Config, ConfigError
from finetune_compare.config import config_to_yaml, load_config, parse_overrides, redact
from finetune_compare.methods import method_names

SEED_KEYS = ["model_name", "num_epochs", "batch_size", "learning_rate", "num_runs", "use_lora", "lora_r",
             "lora_alpha", "lora_dropout", "lora_target_modules", "samples_per_class", "test_samples_per_class",
             "save_model", "save_dir", "patience", "seed"]


def test_seed_api_and_keys():
    cfg = Config(use_lora=True, num_epochs=5)
    assert cfg.num_epochs == 5 and cfg.single_method == "lora"
    assert Config(use_lora=False).single_method == "full"
    for key in SEED_KEYS:
        assert hasattr(cfg, key), key


def test_per_method_learning_rates():
    cfg = Config(learning_rate=2e-5, lora_learning_rate=5e-4)
    assert cfg.learning_rate_for("full") == 2e-5
    assert cfg.learning_rate_for("lora") == 5e-4
    assert cfg.learning_rate_for("dora") == 5e-4


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().num_epochs = 3


def test_default_yaml_is_the_seed_experiment(tmp_path):
    cfg = load_config("configs/default.yaml")
    assert cfg.model_name == "cardiffnlp/twitter-roberta-base-sentiment-latest"
    assert (cfg.samples_per_class, cfg.test_samples_per_class, cfg.data_source) == (15000, 2000, "hub")
    quick = load_config("configs/quickstart.yaml")
    assert (quick.model_name, quick.data_source) == ("embedded-minilm", "embedded")
    assert quick.num_runs >= 3  # the quickstart ends in a paired verdict, not "too few runs"


@pytest.mark.parametrize("name", ["default.yaml", "quickstart.yaml", "study-minilm.yaml", "reference-sweep.yaml",
                                  "study-tuned.yaml"])
def test_config_files_state_only_what_differs_from_the_defaults(name):
    import yaml

    from finetune_compare.config import default_of, flatten_sections

    data = flatten_sections(yaml.safe_load(open(f"configs/{name}")))
    declared = {"primary_metric"}  # a pre-registration restates its metric on purpose
    restated = [k for k, v in data.items() if k != "method_overrides" and k not in declared and v == default_of(k)]
    assert not restated, f"configs/{name} restates defaults: {restated}"


@pytest.mark.parametrize("yaml_text, message", [
    ("lora_rank: 8\n", "unknown config file 'CFG' key 'lora_rank'; did you mean 'lora_r'?"),
    ("learning_rat: 1e-4\n", "unknown config file 'CFG' key 'learning_rat'; did you mean 'learning_rate'?"),
    ("lora_r: 0\n", "config key 'lora_r': must be >= 1, got 0"),
    ("learning_rate: -1\n", "config key 'learning_rate': must be >= 0, got -1.0"),
    ("lora_learning_rate: 0\n", "config key 'lora_learning_rate': must be > 0, got 0.0"),  # (full FT's 0: a control)
    ("val_fraction: 1.0\n", "config key 'val_fraction': must be < 1, got 1.0"),
    ("val_fraction: 0\n", "config key 'val_fraction': must be > 0, got 0.0"),
    ("data_source: s3\n", "config key 'data_source': 's3' is not allowed; allowed: hub, local, embedded, files"),
    ("num_epochs: three\n", "config key 'num_epochs': expected an integer, got 'three' (str)"),
    ("num_epochs: 2.5\n", "config key 'num_epochs': expected an integer, got 2.5 (float)"),
    ("use_lora: maybe\n", "config key 'use_lora': expected true/false, got 'maybe' (str)"),
    ("batch_size: true\n", "config key 'batch_size': expected an integer, got True (bool)"),
    ("methods: [full, qlora]\n", "config key 'methods': 'qlora' is not allowed; allowed: full, lora, dora, ia3, vera, "
                                 "head, METHODS, or a peft method type by its lower-case name: PEFT"),  # the built-ins,
    # every method registered after them, and the peft types a config may name (those not refused)
    ("data_source: local\n", "config key 'data_dir': required when data_source is 'local' (e.g. ../shared/data)"),
    ("- a\n- b\n", "config file 'CFG': expected a mapping of keys to values, got list"),
    ("num_epochs: [1\n", "config file 'CFG' is not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
    # keys nested under their section (model:, data:, training:, ...)
    ("training: {lora_r: 4}\n", "config file 'CFG': 'training.lora_r': 'lora_r' belongs to section 'method', not "
                                "'training'"),
    ("training: {num_epoch: 4}\n", "unknown config file 'CFG' key 'training.num_epoch'; did you mean 'num_epochs'?"),
    ("num_epochs: 3\ntraining: {num_epochs: 4}\n", "config file 'CFG': 'num_epochs' is given twice (flat and under "
                                                  "'training:')"),
    ("training: 5\n", "config file 'CFG': 'training' must be a mapping of its keys, got int"),
])
def test_bad_yaml_values(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    from finetune_compare.methods.peft_types import REFUSED, peft_type_names

    later = ", ".join(method_names()[6:])  # methods added after the built-in six (loha, ...)
    usable = ", ".join(t for t in peft_type_names() if t not in method_names() and t not in REFUSED)
    assert "oft" in usable and "prefix_tuning" not in usable
    assert str(err.value) == message.replace("CFG", str(path)).replace(", METHODS", f", {later}" if later else "") \
        .replace("PEFT", usable)


def test_yaml_scientific_notation_without_dot_is_a_number(tmp_path):
    # PyYAML reads `2e-5` as a string (YAML 1.1); it must still mean 2e-5.
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 2e-5\nlora_learning_rate: 5E-4\n")
    cfg = load_config(path)
    assert cfg.learning_rate == 2e-5 and cfg.lora_learning_rate == 5e-4


def test_missing_and_non_utf8_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("model_name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(bad)


def test_set_overrides_are_yaml_and_repeatable():
    cfg = load_config(None, ["lora_target_modules=[query,key,value]", "lora_r=16", "data_source=embedded",
                             "lora_r=32", "save_dir=null"])
    assert cfg.lora_target_modules == ["query", "key", "value"]
    assert cfg.lora_r == 32 and cfg.save_dir is None
    with pytest.raises(ConfigError, match="unknown --set key 'lora_rr'; did you mean 'lora_r'"):
        parse_overrides(["lora_rr=4"])
    with pytest.raises(ConfigError, match="--set expects key=value"):
        parse_overrides(["lora_r"])


def test_written_config_has_no_secrets():
    cfg = Config(data_dir="postgresql://alice:hunter2@db.example/x")
    text = config_to_yaml(cfg)
    assert "hunter2" not in text and "alice:***@" in text
    assert yaml.safe_load(text)["lora_r"] == 8
    assert redact({"HF_TOKEN": "abc", "nested": {"api_key": "k"}, "ok": 1}) == {
        "HF_TOKEN": "***", "nested": {"api_key": "***"}, "ok": 1}


def test_replace_revalidates():
    with pytest.raises(ConfigError, match="lora_r"):
        Config().replace(lora_r=-1)
    assert Config().replace(lora_r=4).lora_r == 4


def test_yaml_no_means_the_string_no_for_mixed_precision():
    assert load_config(None, ["mixed_precision=no"]).mixed_precision == "no"
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config(None, ["mixed_precision=yes"])


@pytest.mark.parametrize("raw, clean", [
    ("postgresql://user:pa/ss0rd@db.host/optuna", "postgresql://user:***@db.host/optuna"),
    ("mysql://user:p@ssw0rd@db.host:3306/x", "mysql://user:***@db.host:3306/x"),
    ("http://:s3cr3t@host/api", "http://:***@host/api"),
    ("http://user:pw123@127.0.0.1:1/api/2.0/runs", "http://user:***@127.0.0.1:1/api/2.0/runs"),
    ("https://host/x?token=abc123&page=2", "https://host/x?token=***&page=2"),
    ("https://host/x?a=1&API_KEY=zz9&sig=q", "https://host/x?a=1&API_KEY=***&sig=***"),
    ("no secret here: http://host:5000/x", "no secret here: http://host:5000/x"),
])
def test_redaction_covers_the_review_cases(raw, clean):
    from finetune_compare.redaction import redact_text

    assert redact_text(raw) == clean


def test_every_key_may_be_nested_under_its_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {model_name: embedded-minilm}\ndata: {data_source: embedded, samples_per_class: 50}\n"
                    "method: {lora_r: 4}\ntraining: {num_epochs: 5}\nexperiment: {num_runs: 4}\n"
                    "tracking: {wandb: false}\nsearch: {trials: 3}\n")
    config = load_config(path, ["training.batch_size=8", "tracking.mlflow=false"])
    assert (config.model_name, config.samples_per_class, config.lora_r, config.num_epochs, config.num_runs,
            config.tracking_wandb, config.hpo_trials, config.batch_size, config.tracking_mlflow) == \
        ("embedded-minilm", 50, 4, 5, 4, False, 3, 8, False)
    assert load_config(path) == load_config(path)


def test_sections_are_their_own_validated_types():
    from finetune_compare.config import SECTION_TYPES, DataConfig, MethodConfig, TrainingConfig, config_keys

    cfg = Config(data_source="embedded", samples_per_class=40, lora_r=4, num_epochs=2, tracking_wandb=False)
    assert cfg.data == DataConfig(data_source="embedded", samples_per_class=40)
    assert cfg.training.num_epochs == 2 and cfg.method.lora_r == 4 and cfg.tracking.tracking_wandb is False
    assert cfg.method.learning_rate_for("lora") == cfg.lora_learning_rate and cfg.method.head_lr == cfg.learning_rate
    # every key lives in exactly one section, and the section holds only its own keys
    for name, key in config_keys().items():
        owners = [s for s in SECTION_TYPES if name in getattr(cfg, s).to_dict()]
        assert owners == [key.section], name
    assert not hasattr(cfg.data, "num_epochs") and not hasattr(cfg.training, "samples_per_class")
    # a section validates itself: types, ranges and its own cross-key checks, with the config's messages
    with pytest.raises(ConfigError, match="config key 'samples_per_class': must be >= 1, got 0"):
        DataConfig(samples_per_class=0)
    with pytest.raises(ConfigError, match="'data_dir': required when data_source is 'local'"):
        DataConfig(data_source="local")
    with pytest.raises(ConfigError, match="'batch_grouping': 'sorted' is not allowed"):
        TrainingConfig(batch_grouping="sorted")
    assert MethodConfig(lora_r=8.0).lora_r == 8 and isinstance(MethodConfig(lora_r=8.0).lora_r, int)  # coerced
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.data.samples_per_class = 1


def test_a_value_given_on_the_command_line_that_a_method_override_replaces_is_warned_about(caplog):
    from finetune_compare.config import load_config

    cfg = load_config("configs/quickstart.yaml", ["num_epochs=1"])
    assert cfg.num_epochs == 1 and cfg.for_method("lora").num_epochs == 4
    assert ("num_epochs=1 (--set num_epochs) does not apply to lora: method_overrides.lora.num_epochs=4 (config file "
            "'configs/quickstart.yaml') replaces it; to change it too: --set method_overrides.lora.num_epochs=VALUE"
            in caplog.text)
    caplog.clear()
    both = load_config("configs/quickstart.yaml", ["num_epochs=1", "method_overrides.lora.num_epochs=1"])
    assert both.for_method("lora").num_epochs == 1 and both.method_overrides["lora"] == {"num_epochs": 1}
    assert "does not apply" not in caplog.text
    assert load_config("configs/quickstart.yaml").for_method("lora").num_epochs == 4 and not caplog.text
