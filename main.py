"""Seed-compatible entry point: `python main.py --mode compare|lora|full|optimize|data|... [--config PATH]`."""

import sys
from pathlib import Path

# Let `python main.py` work from a checkout even before `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

if __name__ == "__main__":
    try:
        from finetune_compare.cli import main

        sys.exit(main())
    except KeyboardInterrupt as exc:  # a signal while Python is still importing: one line, like later
        from finetune_compare.utils.signals import stop_message

        message, code = stop_message(exc)
        print(message, file=sys.stderr)
        sys.exit(code)
