"""``python -m neurohw ...``: the same as the ``neurohw`` console script."""

import sys

from .cli import main

sys.exit(main())
