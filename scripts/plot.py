#!/usr/bin/env python
"""`python scripts/plot.py ...` is `jpinn plot ...` (jpinn.cli.plot; `--help` lists its options)."""

import sys

from jpinn.cli.plot import main

if __name__ == "__main__":
    sys.exit(main())
