"""Seed-compatible entry point: `python main.py --mode compare|lora|full|optimize|data|... [--config PATH]`."""

import sys
from pathlib import Path

# Let `python main.py` work from a checkout even before `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from finetune_compare.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
