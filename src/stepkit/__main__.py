"""``python -m stepkit``: see :mod:`stepkit.cli._main`."""

import sys

from stepkit.cli._main import main

sys.exit(main())
