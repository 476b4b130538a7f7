"""Replace the key table in docs/configuration.md with `python scripts/config_reference.py`'s output."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
doc = ROOT / "docs" / "configuration.md"
table = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py")], capture_output=True, text=True,
                       check=True).stdout.strip()
lines = doc.read_text(encoding="utf-8").split("\n")
start = next(i for i, line in enumerate(lines) if line.startswith("| key | section |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
doc.write_text("\n".join(lines[:start] + table.split("\n") + lines[end:]), encoding="utf-8")
print(f"{doc}: {end - start} table lines replaced by {len(table.splitlines())}")
