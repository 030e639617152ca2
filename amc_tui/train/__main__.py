"""`python -m amc_tui.train --run-dir DIR [--resume]`: the trainer process (owner.py takes
the run's lock before torch is imported)."""

import sys

from amc_tui.train.owner import main

sys.exit(main())
