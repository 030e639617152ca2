"""`python -m amc_tui.cli ARGS`: the same as `amc-tui ARGS`."""

import sys

from amc_tui.cli.main import main

sys.exit(main())
