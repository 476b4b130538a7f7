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
    from finetune_compare import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))  # a registered example method stays here
    for block in _blocks(doc, "python"):
        exec(compile(block, f"{doc.name} example", "exec"), {"__name__": "__readme__"})
