#!/usr/bin/env python
"""`python scripts/train.py ...` is `jpinn train ...` (jpinn.cli.train; `--help` lists its options)."""

import sys

from jpinn.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
