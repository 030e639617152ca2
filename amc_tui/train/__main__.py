"""`python -m amc_tui.train --run-dir DIR [--resume]`: the trainer process."""

import sys

from amc_tui.train.loop import main

sys.exit(main())
