"""Constellation images rendered in batches on the training device.

The seed pre-rendered 1.8 M PNG files and divided each by its own maximum, which erased the
SNR cues (a clean constellation and a noisy one looked alike). Here a batch of I/Q frames is
turned into 2-D histograms in a few tensor ops, no per-frame Python and no files:

1. per-frame unit-power normalisation: x / sqrt(mean(I^2 + Q^2));
2. bin I (columns) and Q (rows, +Q at the top) over [-range, range]^2 into size x size bins;
   the bins are the ones `np.histogram2d(q, i, bins=size, range=[[-r, r], [-r, r]])` uses
   (edges closed on the left, the last edge included, samples outside dropped). The bin index
   arithmetic runs in float64, which makes it identical to np.histogram2d bin for bin;
3. scale: "log1p" (default) = log1p(counts) / log1p(samples per frame), one fixed constant for
   every image, so a dense clean cluster stays brighter than a smeared noisy one; "density" =
   the samples' probability density on the unit-power I/Q plane, counts / (samples per frame x
   bin area), the same scale at every image size and of the order of log1p's pixels (counts
   / samples alone kept pixels under ~0.05 and a Swin learned nothing from them); "max" =
   counts / the image's own max (the seed's; the frame's count scale is gone, and it logs so).

Channels 2 and 3 are the same histogram at half and a quarter of the range (a 2x and 4x zoom
on the centre): at small image sizes the outer channel shows the whole cloud and the noise
tail, the zoomed ones resolve the inner rings of dense QAM/APSK constellations that fall into
one or two bins at full range.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

log = logging.getLogger(__name__)

NORMALIZE = ("log1p", "density", "max")
_warned_max = False


def channel_ranges(range_: float, channels: int) -> list[float]:
    """The half-width of each channel: range, range/2, range/4."""
    if not 1 <= channels <= 3:
        raise ValueError(f"channels must be 1..3, got {channels}")
    return [range_ / (2**c) for c in range(channels)]


def unit_power(iq: torch.Tensor) -> torch.Tensor:
    """Each frame scaled to mean I^2 + Q^2 = 1 (an all-zero frame stays zero)."""
    power = iq.square().sum(dim=(1, 2)) * (1.0 / iq.shape[1])
    scale = torch.where(power > 0, torch.rsqrt(power.clamp_min(1e-30)), torch.zeros_like(power))
    return iq * scale[:, None, None]


def bin_index(x: torch.Tensor, size: int, ranges: list[float]) -> torch.Tensor:
    """Flat bin index (B * k * N,) int64 into a (B, k, size, size) image stack for unit-power
    frames x (B, N, 2), k = len(ranges); samples outside the range get index B * k * size^2.

    Rows are Q with +Q in row 0, columns are I. The arithmetic is float64: x + r is exact for
    float32 samples, and floor((x + r) / step) is then the bin np.histogram2d finds by
    searching its linspace edges (left edges closed, the last right edge included).
    """
    b, n, _ = x.shape
    k = len(ranges)
    x64 = x.to(torch.float64)
    dump = float(b * k * size * size)
    base = (torch.arange(b, device=x.device, dtype=torch.float64) * k)[:, None]
    reach = x64.abs().amax(dim=-1)  # a sample is inside [-r, r]^2 when reach <= r
    flats = []
    for c, r in enumerate(ranges):
        inside = reach <= r
        v = x64 + r
        v.div_(2.0 * r / size).floor_().clamp_(max=size - 1)  # x == r: the last bin
        # ((frame * k + c) * size + (size - 1 - q_bin)) * size + i_bin, exact in float64
        flat = ((base + c) * size + (size - 1) - v[..., 1]) * size + v[..., 0]
        flats.append(torch.where(inside, flat, dump))
    flat = flats[0] if k == 1 else torch.cat(flats, dim=1)
    return flat.reshape(-1).to(torch.int64)


def bin_counts(x: torch.Tensor, size: int, ranges: list[float]) -> torch.Tensor:
    """Histogram counts (B, len(ranges), size, size) as int64 (for tests and references)."""
    b, k = x.shape[0], len(ranges)
    counts = torch.bincount(bin_index(x, size, ranges), minlength=b * k * size * size + 1)
    return counts[:-1].view(b, k, size, size)


class Renderer:
    """Renders I/Q batches to images (B, channels, size, size) float32 on the frames' device.

    Counts are accumulated with one index_add_ into a zeroed buffer and the scale is applied
    to the touched bins only (at 224 px a frame has 50 k bins but at most 1 k samples). On the
    CPU the output buffer is reused between calls (a fresh 50 MB buffer costs more in page
    faults than the whole rendering), so a returned tensor is valid until the next call.
    """

    def __init__(
        self, size: int, range_: float = 3.0, normalize: str = "log1p", channels: int = 1
    ) -> None:
        if normalize not in NORMALIZE:
            raise ValueError(f"unknown normalize {normalize!r}; one of {', '.join(NORMALIZE)}")
        self.size, self.range, self.normalize = size, range_, normalize
        self.ranges = channel_ranges(range_, channels)
        self.channels = channels
        self._buf: torch.Tensor | None = None
        if normalize == "max":
            _warn_max()

    def _buffer(self, length: int, device: torch.device) -> torch.Tensor:
        if device.type != "cpu":
            return torch.zeros(length, dtype=torch.float32, device=device)
        if self._buf is None or self._buf.numel() < length:
            self._buf = torch.empty(length, dtype=torch.float32)
        return self._buf[:length].zero_()

    def __call__(self, iq: torch.Tensor) -> torch.Tensor:
        if iq.ndim != 3 or iq.shape[-1] != 2:
            raise ValueError(f"iq must be (B, N, 2), got {tuple(iq.shape)}")
        b, n, _ = iq.shape
        s, k = self.size, self.channels
        x = unit_power(iq if iq.dtype in (torch.float32, torch.float64) else iq.float())
        flat = bin_index(x, s, self.ranges)
        buf = self._buffer(b * k * s * s + 1, iq.device)
        buf.index_add_(
            0, flat, torch.ones((), dtype=buf.dtype, device=buf.device).expand(flat.numel())
        )
        img = buf[:-1].view(b, k, s, s)
        if self.normalize == "max":
            return img.div_(img.amax(dim=(-2, -1), keepdim=True).clamp_min(1.0))
        if self.normalize == "density":  # per channel: each zoom has its own bin area
            per = torch.tensor(
                [1.0 / (n * (2.0 * r / s) ** 2) for r in self.ranges], dtype=buf.dtype,
                device=buf.device,
            )  # fmt: skip
            if k * s * s <= 8 * n:
                return img.mul_(per.view(1, k, 1, 1))
            channel = torch.div(flat, s * s, rounding_mode="floor") % k  # the dump bin: any
            buf[flat] = buf[flat] * per[channel]
            return img
        scale = 1.0 / math.log1p(n)
        if k * s * s <= 8 * n:  # small images: one dense pass beats a gather and a scatter
            return img.log1p_().mul_(scale)
        touched = buf[flat]  # bins with samples (and the dump bin, cut off above)
        buf[flat] = torch.log1p(touched) * scale
        return img


def _warn_max() -> None:
    global _warned_max
    if not _warned_max:
        log.warning(
            "image.normalize = 'max' divides each image by its own max: the images no longer "
            "carry the frame's count scale (compare with 'log1p' in a sweep)"
        )
        _warned_max = True


def render(
    iq: torch.Tensor,
    size: int,
    range_: float = 3.0,
    normalize: str = "log1p",
    channels: int = 1,
) -> torch.Tensor:
    """One-off rendering (a fresh tensor); training keeps a `Renderer`."""
    return Renderer(size, range_, normalize, channels)(iq).clone()


def reference_counts(frames: np.ndarray, size: int, range_: float) -> np.ndarray:
    """The per-frame np.histogram2d loop the renderer is measured and tested against: counts
    (B, size, size) for frames already at unit power, +Q in row 0."""
    out = np.empty((len(frames), size, size), dtype=np.int64)
    rng = [[-range_, range_], [-range_, range_]]
    for k, f in enumerate(frames):
        h, _, _ = np.histogram2d(f[:, 1], f[:, 0], bins=size, range=rng)
        out[k] = h[::-1]
    return out
