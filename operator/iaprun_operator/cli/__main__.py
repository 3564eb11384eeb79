"""``python -m iaprun_operator.cli``: the same entry point as the ``iaprun`` console script."""

import sys

from iaprun_operator.cli import main

sys.exit(main())
