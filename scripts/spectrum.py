#!/usr/bin/env python
"""`python scripts/spectrum.py ...` is `jpinn spectrum ...` (jpinn.cli.spectrum; `--help` lists its options)."""

import sys

from jpinn.cli.spectrum import main

if __name__ == "__main__":
    sys.exit(main())
