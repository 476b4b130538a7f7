"""The README and docs stay true: first screen, generated config reference, and every example runs or parses."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_compare.cli import build_parser, normalise_argv

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_docs_document_every_config_key_as_generated():
    table = subprocess.run([sys.executable, str(ROOT / "scripts/config_reference.py")], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert table in (ROOT / "docs/configuration.md").read_text(encoding="utf-8"), \
        "docs/configuration.md is stale: paste `python scripts/config_reference.py` output"


def test_readme_first_screen():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    head = "\n".join(lines[:40])
    assert any(line.startswith("make quickstart") for line in lines[:6])
    assert any(line.startswith("make test") for line in lines[:6])
    assert "report.html" in head and "Verdict" in head and "docs/" in head
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)", "\n".join(lines)):
        assert (ROOT / link).is_file(), link


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_command_in_the_docs_parses(doc):
    """Shell examples: each finetune-compare / main.py line is a valid command line and its files exist."""
    parser = build_parser()
    for block in _blocks(doc, "bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if not line.startswith(("finetune-compare ", "python main.py ")):
                continue
            argv = shlex.split(line)[1 if line.startswith("finetune-compare") else 2:]
            args, unknown = parser.parse_known_args(normalise_argv(argv))
            assert not unknown, f"{doc.name}: {line}"
            for cfg in getattr(args, "config", []) or []:
                placeholder = any(c.isupper() for c in cfg)  # MY.yaml, OUT/optimize/tuned.yaml
                assert placeholder or (ROOT / cfg).is_file(), f"{doc.name}: missing {cfg}"


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if _blocks(d, "python")], ids=lambda d: d.name)
def test_python_examples_run(doc, tmp_path, monkeypatch):
    """Every ```python block runs as written (the README's API example is sized to take seconds)."""
    from finetune_compare.methods import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))  # a registered example method stays here
    for block in _blocks(doc, "python"):
        if SAVED_MODEL in block or EXPORTED in block:  # reads what the README's commands write: the test below
            continue
        exec(compile(block, f"{doc.name} example", "exec"), {"__name__": "__readme__"})


SAVED_MODEL = "outputs/qs3/runs/lora/seed-42/model"
EXPORTED = "exported/lora"
SHORT = ["--set", "samples_per_class=70", "--set", "test_samples_per_class=10", "--set", "num_runs=1", "--set",
         "num_epochs=1", "--set", "method_overrides.lora.num_epochs=1", "--set", "tracking.mlflow=false", "--set",
         "tracking.wandb=false", "--set", "evaluate_base_model=false", "--method", "lora"]


@pytest.mark.slow
def test_saved_model_commands_run(tmp_path, monkeypatch, capsys):
    """The README's compare into outputs/qs3 (on a short budget), then its predict line and the plain-peft snippet of
    docs/internals.md, each as written, offline."""
    from finetune_compare.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for block in _blocks(ROOT / "README.md", "bash") for line in block.splitlines()
             if "outputs/qs3" in line]
    compare = next(line for line in lines if line.startswith("finetune-compare compare"))
    predict = next(line for line in lines if line.startswith("finetune-compare predict"))
    assert SAVED_MODEL in predict and "save_model=true" in compare, readme
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("configs/", f"{ROOT}/configs/") for a in shlex.split(compare)[1:]]
    assert main(argv + SHORT) == 0
    capsys.readouterr()
    assert main(shlex.split(predict)[1:]) == 0
    printed = capsys.readouterr().out.split()
    snippet = next(b for b in _blocks(ROOT / "docs" / "internals.md", "python") if SAVED_MODEL in b)
    exec(compile(snippet, "internals.md example", "exec"), {"__name__": "__readme__"})
    shown = eval(capsys.readouterr().out.strip())  # the snippet prints {label: probability} for "what a film"
    # the same probabilities as `predict` (which prints 'label  negative=0.123  ...'), to its 3 decimals
    from_predict = {k: float(v) for k, v in (p.split("=") for p in printed if "=" in p)}
    assert shown == pytest.approx(from_predict, abs=2e-3)
    # Export and serve: the export line as written, then the loading snippet (transformers and ONNX Runtime)
    export = next(line for line in lines if line.startswith("finetune-compare export") and EXPORTED in line)
    assert main(shlex.split(export)[1:]) == 0
    assert "label agreement 100.00%" in capsys.readouterr().out
    loading = next(b for b in _blocks(ROOT / "README.md", "python") if f'"{EXPORTED}/model.onnx"' in b)
    exec(compile(loading, "README export example", "exec"), {"__name__": "__readme__"})
    torch_line, onnx_line = [x for x in capsys.readouterr().out.strip().splitlines() if x.strip()][-2:]
    import numpy as np

    probs = [float(x) for x in torch_line.split("[[")[1].split("]]")[0].split(",")]
    logits = np.array([float(x) for x in onnx_line.strip("[] ").split()])
    assert np.exp(logits) / np.exp(logits).sum() == pytest.approx(probs, abs=1e-4)
    assert probs == pytest.approx(list(from_predict.values()), abs=2e-3)  # predict's 3 decimals, in label order


@pytest.mark.parametrize("torch, index", [("cpu", "https://download.pytorch.org/whl/cpu"),
                                          ("cuda", "https://download.pytorch.org/whl/cu130"), ("", None)])
def test_make_setup_installs_the_torch_build_asked_for(tmp_path, torch, index):
    """`make setup TORCH=cpu|cuda` as the README says (a dry run: the commands make would run)."""
    done = subprocess.run(["make", "-n", "setup", f"TORCH={torch}", f"VENV={tmp_path / 'v'}"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if 'pip install -q "torch==' in x)
    assert (f"--index-url {index}" in line) if index else "--index-url" not in line
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make setup TORCH=cpu" in readme and "make setup TORCH=cuda" in readme


def test_every_compare_command_s_config_and_set_values_load():
    """Beyond parsing: the README's compare and sweep lines, as written, resolve to a valid config (their --config
    files and --set values; the LoHa line sets a method's setting by its nested name)."""
    import shlex

    from finetune_compare.config import load_config

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [x for x in readme.splitlines() if x.startswith(("finetune-compare compare ", "finetune-compare sweep "))]
    assert len(lines) >= 5
    for line in lines:
        argv = shlex.split(line.split("#")[0])
        configs = [argv[i + 1] for i, a in enumerate(argv) if a == "--config"]
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        cfg = load_config(configs, sets)
        if "loha" in line:
            assert cfg.methods == ["full", "loha"] and cfg.loha_r == 4
