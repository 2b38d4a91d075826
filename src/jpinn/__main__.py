"""``python -m jpinn ...`` is the ``jpinn`` command (jpinn.cli)."""

import sys

from .cli import main

sys.exit(main())
