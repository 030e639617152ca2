"""Rendering I/Q frames to constellation images on the CPU, against a per-frame loop.

The baseline is what a straightforward implementation does for each frame: normalise to unit
power, `np.histogram2d`, log1p scaling. The figure is `amc_tui.train.constellation.Renderer`
on batches of 256 frames (the training path). Counts are checked bin for bin against the
loop on the same unit-power frames.

Also here: what float16 storage (data.ram_dtype = "float16") changes in the images: every
sample's bin is computed from the float32 frame and from its float16 round trip, and the
samples whose bin differs are counted exactly (per-sample comparison of bin indices).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from amc_tui.train.constellation import (
    Renderer,
    bin_counts,
    bin_index,
    channel_ranges,
    reference_counts,
    unit_power,
)
from benchmarks.common import Figure, best_time, rate_figure

BATCH = 256
RANGE = 3.0


def histogram2d_loop(frames: np.ndarray, size: int, range_: float = RANGE) -> np.ndarray:
    """The baseline: one np.histogram2d per frame, unit power and log1p scaling included."""
    n = frames.shape[1]
    scale = 1.0 / math.log1p(n)
    rng = [[-range_, range_], [-range_, range_]]
    out = np.empty((len(frames), size, size), dtype=np.float32)
    for k, f in enumerate(frames):
        p = float(np.mean(f[:, 0] ** 2 + f[:, 1] ** 2))
        g = f / math.sqrt(p) if p > 0 else f
        h, _, _ = np.histogram2d(g[:, 1], g[:, 0], bins=size, range=rng)
        out[k] = np.log1p(h[::-1]) * scale
    return out


def render_batched(renderer: Renderer, frames: np.ndarray) -> None:
    for a in range(0, len(frames), BATCH):
        renderer(torch.from_numpy(frames[a : a + BATCH]))


def counts_identical(frames: np.ndarray, size: int) -> tuple[bool, int]:
    """(identical, samples in differing bins) for the renderer's binning vs histogram2d on the
    same unit-power frames."""
    x = unit_power(torch.from_numpy(frames))
    ours = bin_counts(x, size, [RANGE])[:, 0].numpy()
    ref = reference_counts(x.numpy(), size, RANGE)
    diff = int(np.abs(ours - ref).sum())
    return diff == 0, diff


def with_threads(n: int, fn: Any) -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(old)


def render_figures(frames: np.ndarray, loop_frames: int, size: int, repeats: int) -> list[Figure]:
    """render_cpu_<size> (torch threads = cores) and render_cpu_<size>_1thread."""
    loop_set = frames[:loop_frames]
    t_loop = best_time(lambda: histogram2d_loop(loop_set, size), repeats=max(1, repeats - 1))
    loop_rate = len(loop_set) / t_loop
    identical, moved = counts_identical(loop_set, size)
    renderer = Renderer(size, RANGE, "log1p", 1)
    # end-to-end: the renderer's image vs the loop's image on the same frames
    img = renderer(torch.from_numpy(loop_set)).clone().numpy()[:, 0]
    max_abs = float(np.abs(img - histogram2d_loop(loop_set, size)).max())
    render_batched(renderer, frames[:BATCH])  # warm-up: buffers, thread pool
    out = []
    cores = torch.get_num_threads()
    for threads, suffix in ((cores, ""), (1, "_1thread")):
        t = with_threads(
            threads, lambda: best_time(lambda: render_batched(renderer, frames), repeats)
        )
        out.append(
            rate_figure(
                f"render_cpu_{size}{suffix}", len(frames) / t, "frames/s",
                "histogram2d_loop", loop_rate,
                note=f"Renderer({size}, log1p, 1 channel), batches of {BATCH}, torch threads "
                f"{threads}; baseline: per-frame np.histogram2d loop (1 thread, numpy)",
                extra={"identical_counts": identical, "samples_in_differing_bins": moved,
                       "frames_checked": len(loop_set), "image_max_abs_diff": max_abs,
                       "torch_threads": threads},
            )
        )  # fmt: skip
    return out


def int16_scaled(frames: np.ndarray) -> np.ndarray:
    """A candidate alternative to float16 at the same 2 bytes per value: int16 with one
    float32 scale per frame (max |value| -> 32767); returned decoded to float32."""
    scale = np.abs(frames).max(axis=(1, 2), keepdims=True) / 32767.0
    scale[scale == 0] = 1.0
    q = np.rint(frames / scale).astype(np.int16)
    return (q.astype(np.float32) * scale).astype(np.float32)


def storage_moves(
    frames: np.ndarray, size: int, channels: int = 1, codec: str = "float16"
) -> dict[str, Any]:
    """Samples whose bin differs between the float32 frames and their stored-and-decoded
    copy (`codec` "float16" = data.ram_dtype float16; "int16_scaled" = a candidate)."""
    ranges = channel_ranges(RANGE, channels)
    moved = frames_touched = edge = far = 0
    max_img = 0.0
    r32, r16 = Renderer(size, RANGE, "log1p", channels), Renderer(size, RANGE, "log1p", channels)
    cells = len(frames[:1]) * len(ranges) * size * size
    for a in range(0, len(frames), 1024):
        part = frames[a : a + 1024]
        dec = (
            part.astype(np.float16).astype(np.float32) if codec == "float16" else int16_scaled(part)
        )
        f32, f16 = torch.from_numpy(part), torch.from_numpy(dec)
        i32 = bin_index(unit_power(f32), size, ranges).view(len(part), -1)
        i16 = bin_index(unit_power(f16), size, ranges).view(len(part), -1)
        diff = i32 != i16
        moved += int(diff.sum())
        frames_touched += int(diff.any(dim=1).sum())
        dump = len(part) * cells
        inside = diff & (i32 < dump) & (i16 < dump)
        edge += int((diff & ~inside).sum())  # crossed the range's outer edge
        a32, a16 = i32[inside] % (size * size), i16[inside] % (size * size)
        cheb = torch.maximum((a32 // size - a16 // size).abs(), (a32 % size - a16 % size).abs())
        far += int((cheb > 1).sum())
        max_img = max(max_img, float((r32(f32) - r16(f16)).abs().max()))
    samples = frames.shape[0] * frames.shape[1] * len(ranges)
    return {
        "codec": codec,
        "size": size,
        "channels": channels,
        "frames": int(frames.shape[0]),
        "samples": int(samples),
        "samples_moved": moved,
        "moved_per_million": round(moved / samples * 1e6, 1),
        "moved_across_range_edge": edge,
        "moved_beyond_neighbouring_bin": far,
        "frames_with_a_moved_sample": frames_touched,
        "image_max_abs_diff": round(max_img, 5),
        "one_sample_in_empty_bin": round(math.log1p(1) / math.log1p(frames.shape[1]), 5),
    }


def run(files: Any, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    n = 128 if quick else 2048
    frames = files.frames(256 if quick else 4096)  # float16 check: 4 M samples
    render_set = np.ascontiguousarray(frames[:: max(1, len(frames) // n)][:n])
    repeats = 2 if quick else 3
    figs = render_figures(render_set, 32 if quick else 1024, 64, repeats)
    figs += render_figures(render_set, 16 if quick else 256, 224, repeats)
    f16 = [storage_moves(frames, s) for s in (64, 224)]
    f16.append(storage_moves(frames, 64, channels=3))
    f16 += [storage_moves(frames, s, codec="int16_scaled") for s in (64, 224)]
    return figs, {"float16_storage": f16}
