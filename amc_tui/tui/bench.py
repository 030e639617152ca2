"""First-paint benchmark: seconds from starting a fresh `amc-tui` process until the Runs
table first shows rows (interpreter start and every import included).

`first_paint_seconds(ws)` runs the app headless in a subprocess (`python -m amc_tui.tui.bench
--workspace ROOT`), which exits from the app's `first_rows_painted` hook, the refresh after
the first batch of runs lands in the table. With 1,000 runs the rest of the table fills in
afterwards, batch by batch.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from amc_tui.tui.app import AmcApp
from amc_tui.workspace import Workspace


def first_paint_seconds(
    ws: Workspace, size: tuple[int, int] = (120, 40), timeout: float = 60.0
) -> float:
    """Wall seconds to first paint of the Runs table in a fresh process."""
    argv = [sys.executable, "-m", "amc_tui.tui.bench", "--workspace", str(ws.root),
            "--size", f"{size[0]}x{size[1]}"]  # fmt: skip
    t0 = time.time()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"first-paint probe failed ({out.returncode}): {out.stderr[-400:]}")
    return float(lines[-1]) - t0


def _probe(root: Path, size: tuple[int, int]) -> float:
    class ProbeApp(AmcApp):
        painted_at = 0.0

        def first_rows_painted(self) -> None:
            self.painted_at = time.time()
            self.exit()

    app = ProbeApp(Workspace(root))
    app.run(headless=True, size=size)
    return app.painted_at


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workspace", required=True)
    p.add_argument("--size", default="120x40")
    p.add_argument("--repeat", type=int, default=0, help="measure N times and print each")
    args = p.parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    if args.repeat:
        ws = Workspace(Path(args.workspace))
        for _ in range(args.repeat):
            print(f"{first_paint_seconds(ws, (w, h)):.3f}")
        return 0
    painted = _probe(Path(args.workspace), (w, h))
    if not painted:
        return 1
    print(f"{painted:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
