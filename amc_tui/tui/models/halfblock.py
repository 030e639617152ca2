"""Images as terminal cells: each cell is `▀` with the upper pixel as its foreground colour and
the lower one as its background, so a W x H image takes W columns and H/2 rows (a 32 px
constellation is 32 x 16 cells: two fit 80 columns side by side with their gap).

Pure: arrays in, rows of (top, bottom) hex colours out; the widget turns them into text.
Each panel is scaled to its own maximum (a map's absolute level means nothing across cells),
and shrunk by block means to fit the space it is given.
"""

from __future__ import annotations

import math

import numpy as np

HALF_BLOCK = "▀"
# dark -> bright: the mean image (empty bins black, dense bins white)
GREY = ((0.0, (0, 0, 0)), (1.0, (255, 255, 255)))
# black -> purple -> orange -> pale yellow, after matplotlib's "inferno" (the figure's map)
INFERNO = ((0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)),
           (0.75, (249, 142, 9)), (1.0, (252, 255, 164)))  # fmt: skip

Cells = list[list[tuple[str, str]]]  # rows of (upper pixel, lower pixel) colours


def shrink(img: np.ndarray, max_w: int, max_rows: int) -> np.ndarray:
    """Block means by the smallest integer factor that makes `img` (H, W) at most `max_w`
    pixels wide and `2 * max_rows` pixels tall (a ragged edge is dropped)."""
    h, w = img.shape
    f = max(1, math.ceil(w / max(1, max_w)), math.ceil(h / max(1, 2 * max_rows)))
    if f == 1:
        return img
    hh, ww = h // f, w // f
    return img[: hh * f, : ww * f].reshape(hh, f, ww, f).mean(axis=(1, 3))


def cells(img: np.ndarray, stops: tuple = INFERNO) -> Cells:
    """(H, W) -> ceil(H/2) rows of W (top, bottom) colours, scaled to the image's max."""
    a = np.asarray(img, dtype=np.float64)
    top = float(np.nanmax(a)) if a.size else 0.0
    a = a / top if top > 0 else np.zeros_like(a)
    if len(a) % 2:
        a = np.vstack([a, np.zeros((1, a.shape[1]))])
    xs = [x for x, _ in stops]
    rgb = np.stack([np.interp(a, xs, [c[i] for _, c in stops]) for i in range(3)], axis=-1)
    rgb = np.clip(np.rint(rgb), 0, 255).astype(int)
    colour = [["#{:02x}{:02x}{:02x}".format(*px) for px in row] for row in rgb]
    return [list(zip(colour[r], colour[r + 1], strict=True)) for r in range(0, len(a), 2)]


def layout(n_panels: int, size: int, width: int, rows: int, gap: int = 2) -> int:
    """The panel width in pixels (= columns) that fits `n_panels` side by side in `width`
    columns and `rows` rows, for a square `size` image."""
    per = (width - gap * (n_panels - 1)) // max(1, n_panels)
    f = max(1, math.ceil(size / max(1, per)), math.ceil(size / max(1, 2 * rows)))
    return size // f
