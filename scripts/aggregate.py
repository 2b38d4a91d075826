#!/usr/bin/env python
"""`python scripts/aggregate.py ...` is `jpinn aggregate ...` (jpinn.cli.aggregate; `--help` lists its options)."""

import sys

from jpinn.cli.aggregate import main

if __name__ == "__main__":
    sys.exit(main())
