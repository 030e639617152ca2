"""The saliency figure of a run's explain export (`amc-tui plot RUN --figures saliency`).

One figure per head: a row per modulation, and per SNR band three panels: the mean input image,
the trained model's mean |attribution|, and the same with randomised weights (the sanity
check's other half, so a reader sees at a glance whether the map depends on the weights). The
caption gives the sanity verdict with its rank correlation, loudly when the map fails it, and
where the attribution concentrates (centre, unit ring, outer rings) against where the signal
is. Panels show the image's first channel (the full range); every text is shrunk until it
fits the canvas. matplotlib is heavy: only `plot` imports this module.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display, no GUI event loop

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from amc_tui.errors import UserError  # noqa: E402
from amc_tui.run import saliency as sal  # noqa: E402
from amc_tui.run.rundir import read_run  # noqa: E402
from amc_tui.sweeps.plot import FORMATS, STYLE, Target, slug, write_figures  # noqa: E402

DPI = 150  # a grid of small images: 300 dpi only makes the file larger
PANEL_IN = 0.62  # inches per panel (square)
LABEL_IN = 0.75  # the row labels' column
HEAD_IN, CAPTION_IN = 0.75, 0.75
PANELS = (("image", "image"), ("map", "trained"), ("random", "random weights"))
FAIL_COLOUR = "#b00020"
MIN_FONT = 4.0


def choose_export(run_dir: Path, split: str, name: str) -> sal.ExplainExport:
    """The run's explain export for `split` ("auto": test, else val), the default method
    first; UserError saying how to make one when there is none."""
    exports = sal.list_exports(run_dir)
    if split != "auto":
        exports = [e for e in exports if e.split == split]
    if not exports:
        which = "" if split == "auto" else f" of the {split} split"
        flag = "" if split in ("auto", "test") else f" --split {split}"
        raise UserError(
            f"{name} has no explain export{which}: make one with amc-tui explain {name}{flag}"
        )
    return exports[0]


def fit_texts(fig: Figure) -> None:
    """Shrink every text that leaves the canvas (long labels, a long verdict) until it fits,
    down to MIN_FONT points; past that, wrap its lines."""
    canvas = fig.canvas
    for _ in range(24):
        renderer = canvas.get_renderer()  # type: ignore[attr-defined]  (Agg)
        box = fig.bbox
        over = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()
                and not _inside(t.get_window_extent(renderer), box)]  # fmt: skip
        if not over:
            return
        for t in over:
            if t.get_fontsize() > MIN_FONT:
                t.set_fontsize(max(MIN_FONT, t.get_fontsize() * 0.85))
                continue
            ratio = box.width / max(1.0, t.get_window_extent(renderer).width)  # wrap the rest
            t.set_text("\n".join(
                textwrap.fill(line, max(8, int(len(line) * ratio * 0.9)))
                for line in t.get_text().split("\n")))  # fmt: skip
        canvas.draw()


def _inside(bb: Any, box: Any) -> bool:
    eps = 0.5
    return (bb.x0 >= box.x0 - eps and bb.x1 <= box.x1 + eps and bb.y0 >= box.y0 - eps
            and bb.y1 <= box.y1 + eps)  # fmt: skip


def texts_outside(fig: Figure) -> list[str]:
    """The texts that do not fit the canvas (tests)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)
            if t.get_visible() and t.get_text()
            and not _inside(t.get_window_extent(renderer), fig.bbox)]  # fmt: skip


def caption(export: sal.ExplainExport, head: str) -> tuple[str, bool]:
    """(the caption's lines, passed) of one head's figure."""
    s = export.sanity
    rho = (s.get("randomized_similarity") or {}).get(head)
    passed, line = sal.verdict(rho, float(s.get("threshold", sal.SANITY_THRESHOLD)))
    rings = sal.rings_text(sal.head_rings(export, head))
    signal = sal.rings_text(sal.head_rings(export, head, "image"))
    frames = export.summary.get("frames")
    text = (
        f"{sal.HEAD_NAMES[head][0].upper()}{sal.HEAD_NAMES[head][1:]} head, model-randomisation test (Adebayo et al. "
        f"2018): {line}\n"
        f"Attribution (all cells): {rings}; signal: {signal} "
        f"(rings at {sal.RING_EDGES[0]:g} and {sal.RING_EDGES[1]:g} x RMS amplitude).\n"
        f"Mean |attribution| of <= {frames} frames per cell, true class as target; "
        "first image channel."
    )
    return text, passed


def saliency_figure(
    export: sal.ExplainExport, head: str, label: str, only: Sequence[str] = ()
) -> Figure:
    """One head's grid; `only` keeps those modulations' rows (all when empty)."""
    summary = export.summary
    mods = [m for m in summary.get("classes", []) if (not only or m in only) and any(
        c["modulation"] == m and c.get("n") for c in export.cells)]  # fmt: skip
    bands = [b for b in sal.BAND_NAMES if any(
        c["band"] == b and c.get("n") for c in export.cells)]  # fmt: skip
    if not mods or not bands:
        raise UserError(f"{label}: the explain export {export.folder} has no cell with frames")
    ncols = len(bands) * len(PANELS)
    width = LABEL_IN + ncols * PANEL_IN + 0.2
    height = HEAD_IN + len(mods) * PANEL_IN + CAPTION_IN
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # a renderer to measure the texts with
    left, top = LABEL_IN / width, 1 - HEAD_IN / height
    bottom = CAPTION_IN / height
    gs = fig.add_gridspec(len(mods), ncols, left=left, right=1 - 0.2 / width, top=top,
                          bottom=bottom, wspace=0.06, hspace=0.08)  # fmt: skip
    text, passed = caption(export, head)
    fig.suptitle(
        f"{label}: {sal.HEAD_NAMES[head]} head, {summary.get('method_name', export.method)} "
        f"({export.split} split)", y=1 - 0.12 / height, va="top",
    )  # fmt: skip
    for bi, band in enumerate(bands):
        x = left + (bi + 0.5) * (1 - left - 0.2 / width) / len(bands)
        fig.text(x, top + 0.30 / height, sal.band_text(band), ha="center", va="bottom")
    for r, mod in enumerate(mods):
        for bi, band in enumerate(bands):
            z = export.cell(mod, band)
            for pi, (key, title) in enumerate(PANELS):
                ax = fig.add_subplot(gs[r, bi * len(PANELS) + pi])
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if r == 0:
                    ax.set_title(title, fontsize=6, pad=2)
                if pi == 0 and bi == 0:
                    ax.set_ylabel(mod, rotation=0, ha="right", va="center", fontsize=7)
                if z is None or not int(z["n"]):
                    ax.set_facecolor("#eeeeee")
                    continue
                arr = {"image": z["image"], "map": z[head], "random": z[f"{head}_random"]}[key]
                ax.imshow(arr[0], cmap="gray_r" if key == "image" else "inferno",
                          interpolation="nearest")  # fmt: skip
    fig.text(0.01, 0.1 / height, text, ha="left", va="bottom", fontsize=6,
             color="black" if passed else FAIL_COLOUR,
             fontweight="normal" if passed else "bold")  # fmt: skip
    fig.canvas.draw()
    fit_texts(fig)
    return fig


def plot_saliency(
    targets: Sequence[Target], out_dir: str | os.PathLike[str], formats: Sequence[str],
    split: str = "auto",
) -> list[Path]:  # fmt: skip
    """saliency_<head>_<run>.<fmt> per run target; everything is read and checked before the
    first file is written."""
    formats = [f.lower().lstrip(".") for f in formats]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UserError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    figures = []
    with matplotlib.rc_context(STYLE):
        for t in targets:
            if t.group:
                raise UserError(f"{t.label}: saliency figures are per run; name its runs")
            name = read_run(t.runs[0], with_last_epoch=False).name
            export = choose_export(t.runs[0], split, name)
            for head in sal.HEADS:
                fig = saliency_figure(export, head, t.label)
                figures.append((f"saliency_{head}_{slug(t.label)}", fig))
    return write_figures(Path(out_dir), figures, formats, DPI)
