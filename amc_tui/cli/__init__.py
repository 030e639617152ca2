"""The command surface: `main` parses (`main.py`) and dispatches to one module per command
family (`runs`, `groups`); `python -m amc_tui.cli` and the `amc-tui` script both land here."""

from amc_tui.cli.main import main

__all__ = ["main"]
