"""Method variants: one method under two names with different settings (`method_variants`), each a method of its own
for the config, the search, the runs, loading and export; bad declarations are one line each."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finetune_compare import Config, ConfigError
from finetune_compare.experiments.search.optimize import search_space_for
from finetune_compare.methods import get_method

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"lora_attn": {"base": "lora", "lora_target_modules": ["query", "key", "value"]},
            "lora_all": {"base": "lora", "method": {"lora": {"r": 16}},
                         "lora_target_modules": ["query", "key", "value", "intermediate.dense", "output.dense"]}}


def variants_config(**kw) -> Config:
    return Config(methods=["full", "lora_attn", "lora_all"], method_variants=VARIANTS, **kw)


def test_each_variant_trains_like_its_base_with_its_own_settings():
    cfg = variants_config()
    assert cfg.method_variants["lora_all"] == {  # recorded flat, as method_overrides are
        "base": "lora", "lora_r": 16,
        "lora_target_modules": ["query", "key", "value", "intermediate.dense", "output.dense"]}
    assert cfg.for_method("lora_attn").lora_target_modules == ["query", "key", "value"]
    assert cfg.for_method("lora_all").lora_r == 16 and cfg.for_method("lora_attn").lora_r == 8
    assert cfg.for_method("lora").lora_target_modules == ["query", "value"]  # the base keeps its own settings
    lora, variant = get_method("lora"), get_method("lora_all")
    assert variant.apply is lora.apply and variant.settings is lora.settings and variant.variant_of == "lora"
    assert cfg.learning_rate_for("lora_all") == cfg.learning_rate_for("lora")


def test_method_overrides_apply_over_a_variants_settings():
    cfg = variants_config(method_overrides={"lora_all": {"lora_r": 32, "num_epochs": 7}})
    assert cfg.for_method("lora_all").lora_r == 32 and cfg.for_method("lora_all").num_epochs == 7
    assert cfg.for_method("lora_all").lora_target_modules[-1] == "output.dense"


def test_a_variants_own_settings_are_left_out_of_its_default_search():
    cfg = variants_config()
    assert "lora_target_modules" in search_space_for(cfg, "lora")
    assert "lora_target_modules" not in search_space_for(cfg, "lora_attn")
    assert "lora_r" not in search_space_for(cfg, "lora_all") and "lora_r" in search_space_for(cfg, "lora_attn")
    searched = variants_config(search_space={"lora_all": {"lora_r": {"type": "categorical", "choices": [8, 16]}}})
    assert search_space_for(searched, "lora_all")["lora_r"]["choices"] == [8, 16]  # the user's space wins


def test_a_variant_round_trips_through_config_yaml(tmp_path):
    from finetune_compare.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(variants_config().to_dict()))
    again = load_config(str(path))
    assert again.for_method("lora_all").lora_r == 16 and again.methods == ["full", "lora_attn", "lora_all"]


@pytest.mark.parametrize("variants, match", [
    ({"x": {"base": "nope"}}, r"method_variants.x.base': unknown method 'nope'"),
    ({"x": {"lora_r": 4}}, r"method_variants.x': expected \{base: METHOD"),
    ({"oft": {"base": "lora"}}, "is a peft method type's name"),
    ({"lora": {"base": "full"}}, "'lora' is already a method"),
    ({"Bad-Name": {"base": "lora"}}, "not a usable method name"),
    ({"x": {"base": "lora", "samples_per_class": 5}}, r"method_variants.x.samples_per_class': 'samples_per_class' "
                                                      "cannot differ between methods"),
    ({"x": {"base": "lora", "budget": 5}}, "a declared budget is the same for every method"),
    ({"x": {"base": "lora", "lora_r": 0}}, r"method_variants.x: config key 'lora_r': must be >= 1"),
    ({"x": {"base": "lora", "lora_rank": 4}}, "lora_rank"),
])
def test_a_bad_variant_is_one_clear_error(variants, match):
    with pytest.raises(ConfigError, match=match):
        Config(methods=["full", *variants], method_variants=variants)


def test_a_variant_of_a_variant_is_refused():
    with pytest.raises(ConfigError, match="'a' is itself a variant"):
        Config(methods=["full", "a", "b"], method_variants={"a": {"base": "lora"}, "b": {"base": "a"}})


def test_a_variant_of_a_peft_type_gets_peft_s_settings():
    cfg = Config(methods=["full", "hra_big"], method_variants={"hra_big": {"base": "hra", "hra_r": 16}})
    assert cfg.for_method("hra_big").hra_r == 16 and get_method("hra_big").generic


def test_a_bad_variant_from_the_cli_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"methods": ["full", "x"], "method_variants": {"x": {"base": "nope"}}}))
    done = subprocess.run([sys.executable, "-m", "finetune_compare.cli", "config", "--config", str(config)],
                          capture_output=True, text=True, cwd=ROOT, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in done.stderr


def test_the_readme_variants_line_loads():
    """The README's method_variants command, as written: its config resolves to the two variants."""
    import shlex

    from finetune_compare.cli import build_parser
    from finetune_compare.config import load_config

    line = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("finetune-compare compare") and "method_variants=" in line)
    args = build_parser().parse_args(shlex.split(line)[1:])
    cfg = load_config(args.config, args.overrides)
    assert cfg.methods == ["full", "lora_attn", "lora_all"]
    assert cfg.for_method("lora_all").lora_target_modules[-2:] == ["intermediate.dense", "output.dense"]
