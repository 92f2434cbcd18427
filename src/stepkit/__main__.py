"""``python -m stepkit``: see :mod:`stepkit.cli`."""

import sys

from .cli import main

sys.exit(main())
