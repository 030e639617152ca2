"""docs/img/explain-demo.png: the saliency figure of the demo run (docs/EXPLAIN.md), a few
modulations' rows of `amc-tui plot RUN --figures saliency` at a small size.

    python docs/make_explain_figure.py runs/demo-1 [--head mod] [--out docs/img/explain-demo.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

from amc_tui.run import saliency as sal
from amc_tui.sweeps.plot import STYLE
from amc_tui.sweeps.saliency_plot import choose_export, saliency_figure

ROWS = ("BPSK", "QPSK", "8PSK", "16APSK", "64APSK", "16QAM", "64QAM", "OQPSK")
DPI = 100


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir", type=Path)
    p.add_argument("--head", default="mod", choices=sal.HEADS)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "img" / "explain-demo.png")
    args = p.parse_args()
    export = choose_export(args.run_dir, "test", args.run_dir.name)
    with matplotlib.rc_context(STYLE):
        fig = saliency_figure(export, args.head, args.run_dir.name, ROWS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=DPI, metadata={"Software": None})
    print(args.out, args.out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
