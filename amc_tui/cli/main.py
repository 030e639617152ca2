"""`amc-tui`: parse the arguments (`parser`), load the command's module, run it, set the exit
code.

Exit codes: 0 ok, 2 bad input (one line on stderr), 1 a file that cannot be written
(`runlog sync`), 130 interrupted; `run` returns the trainer's. Nothing here imports torch/timm:
the trainer and the benchmark run in subprocesses.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from amc_tui.cli.parser import build_parser
from amc_tui.errors import UserError
from amc_tui.workspace import Workspace

Handler = Callable[[argparse.Namespace, Workspace], int]
DEFAULT = "system:cmd_tui"  # `amc-tui` alone opens the app


def load_handler(spec: str) -> Handler:
    """ "module:function" -> the function; a bare module name is one of this package's."""
    module, _, name = spec.partition(":")
    if "." not in module:
        module = f"amc_tui.cli.{module}"
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ws = Workspace.find(args.workspace)
    try:
        handler = load_handler(getattr(args, "handler", DEFAULT))
        return handler(args, ws)
    except UserError as e:
        print(f"amc-tui: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `amc-tui ls | head`
        sys.stderr.close()
        return 0
