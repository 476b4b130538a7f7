"""Rewrite docs/configuration.md's reference table in place from the config's sections (what the README test checks).

    python scripts/update_config_docs.py
"""

from pathlib import Path

from config_reference import table

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
lines = DOC.read_text(encoding="utf-8").split("\n")
start = lines.index("| key | section | type | default | meaning |")
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
lines[start:end] = table().split("\n")
DOC.write_text("\n".join(lines), encoding="utf-8")
