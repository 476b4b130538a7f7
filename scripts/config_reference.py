"""Print docs/configuration.md's reference table from the config's sections and the registered methods.

    python scripts/config_reference.py > /tmp/table.md
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from finetune_compare.config import describe_keys  # noqa: E402


def table() -> str:
    rows = ["| key | section | type | default | meaning |", "|---|---|---|---|---|"]
    for key, section, type_name, default, help_text in describe_keys():
        shown = "null" if default is None else str(default).replace("|", "\\|")
        rows.append(f"| `{key}` | {section} | {type_name} | `{shown}` | {help_text.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
