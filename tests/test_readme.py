import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_documents_every_config_key_as_generated():
    table = subprocess.run([sys.executable, str(ROOT / "scripts/config_reference.py")], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README's configuration table is stale: paste `python scripts/config_reference.py` output"


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")[:6]
    assert any(line.startswith("make quickstart") for line in head)
    assert any(line.startswith("make test") for line in head)
