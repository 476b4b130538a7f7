"""Seed-compatible entry point: `python main.py --mode compare|lora|full|optimize|data|... [--config PATH]`."""

import sys
from pathlib import Path

# Let `python main.py` work from a checkout even before `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

if __name__ == "__main__":
    try:
        from finetune_compare.cli import main

        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while Python is still importing: quiet, like later
        print("interrupted", file=sys.stderr)
        sys.exit(130)
