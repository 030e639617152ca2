"""Constellation rendering: batched binning against a per-frame np.histogram2d, bin for bin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from amc_tui.data.synth import make_cell
from amc_tui.train.constellation import (
    Renderer,
    bin_counts,
    channel_ranges,
    reference_counts,
    render,
    unit_power,
)

torch.set_num_threads(1)


def frames(n_per: int = 3, seed: int = 1) -> np.ndarray:
    """Real synthetic frames over classes and SNRs, plus samples exactly on bin edges."""
    x = np.concatenate(
        [
            make_cell(c, s, n_per, seed=seed)
            for c in ("BPSK", "16QAM", "64APSK")
            for s in (-10, 10, 30)
        ]
    )
    return x.astype(np.float32)


def numpy_unit_power(x: np.ndarray) -> np.ndarray:
    p = np.mean(x[..., 0] ** 2 + x[..., 1] ** 2, axis=1)
    return x / np.sqrt(p)[:, None, None]


@pytest.mark.parametrize("size", [32, 64, 224])
def test_counts_match_histogram2d_float32(size: int) -> None:
    x = torch.from_numpy(frames())
    xn = unit_power(x)
    ref = reference_counts(xn.numpy().astype(np.float64), size, 3.0)
    got = bin_counts(xn, size, [3.0])[:, 0].numpy()
    assert got.shape == ref.shape
    assert np.array_equal(got, ref)


def test_counts_match_on_edges_and_outside() -> None:
    """Samples exactly on edges, on +range (kept in the last bin) and beyond (dropped)."""
    size, r = 16, 2.0
    edges = np.linspace(-r, r, size + 1)
    x = np.zeros((2, len(edges) * 3, 2), dtype=np.float64)
    x[0, : len(edges), 0] = edges  # every edge on I, Q = 0
    x[0, len(edges) : 2 * len(edges), 1] = edges  # every edge on Q
    x[0, -4:] = [[r, r], [-r, -r], [r + 1e-9, 0], [0, -r - 1e-9]]
    x[1] = np.random.default_rng(0).normal(0, 1.5, x[1].shape)
    got = bin_counts(torch.from_numpy(x), size, [r])[:, 0].numpy()
    assert np.array_equal(got, reference_counts(x, size, r))
    assert got[0].sum() == x.shape[1] - 2  # only the two samples beyond the range dropped


def test_float64_end_to_end_with_numpy_normalisation() -> None:
    x = frames().astype(np.float64)
    img = Renderer(64, 3.0, "density", 1)(torch.from_numpy(x))[:, 0].double().numpy()
    ref = reference_counts(numpy_unit_power(x), 64, 3.0)
    bin_area = (2 * 3.0 / 64) ** 2
    assert np.array_equal(np.rint(img * x.shape[1] * bin_area).astype(np.int64), ref)


def test_orientation_plus_q_on_top_and_i_to_the_right() -> None:
    x = torch.zeros(1, 4, 2, dtype=torch.float64)
    x[0, :, 0] = torch.tensor([1.0, 1.0, 1.0, 1.0])  # I = +1 after unit power
    x[0, :, 1] = torch.tensor([1.0, 1.0, 1.0, 1.0]) * 0.5
    counts = bin_counts(unit_power(x), 8, [2.0])[0, 0]
    row, col = divmod(int(counts.argmax()), 8)
    assert row < 4 and col >= 4  # +Q in the upper half, +I in the right half


def test_unit_power_and_zero_frame() -> None:
    x = torch.randn(3, 1024, 2) * torch.tensor([0.1, 1.0, 10.0])[:, None, None]
    x[2] = 0
    y = unit_power(x)
    p = (y * y).sum(-1).mean(-1)
    assert torch.allclose(p[:2], torch.ones(2), atol=1e-5)
    assert torch.all(y[2] == 0)


def test_log1p_keeps_density_differences_between_snrs() -> None:
    """The fixed log1p scale keeps a clean constellation brighter than a noisy one; the
    seed's max normalisation makes both peak at 1."""
    clean = make_cell("QPSK", 30, 1, seed=2)
    noisy = make_cell("QPSK", -10, 1, seed=2)
    x = torch.from_numpy(np.concatenate([clean, noisy]))
    log = Renderer(32, 3.0, "log1p")(x)
    assert float(log[0].max()) > float(log[1].max()) + 0.05
    assert float(log.max()) <= 1.0
    mx = render(x, 32, 3.0, "max")
    assert math.isclose(float(mx[0].max()), 1.0) and math.isclose(float(mx[1].max()), 1.0)


def test_normalize_scales() -> None:
    x = torch.from_numpy(frames(1))
    counts = bin_counts(unit_power(x), 32, [3.0]).float()
    n = x.shape[1]
    # a probability density: counts / (samples x bin area), which integrates to the share of
    # samples inside the window
    dens = render(x, 32, normalize="density")
    assert torch.allclose(dens, counts / (n * (2 * 3.0 / 32) ** 2))
    inside = counts.sum(dim=(-2, -1)) / n
    assert torch.allclose(dens.sum(dim=(-2, -1)) * (2 * 3.0 / 32) ** 2, inside)
    assert torch.allclose(render(x, 32, normalize="log1p"), torch.log1p(counts) / math.log1p(n))
    with pytest.raises(ValueError, match="normalize"):
        Renderer(32, normalize="sqrt")


@pytest.mark.parametrize("size", [32, 224])  # dense and sparse scaling paths
def test_channels_are_zoomed_histograms(size: int) -> None:
    x = torch.from_numpy(frames(1))
    img = render(x, size, 3.0, "density", channels=3)
    assert img.shape == (len(x), 3, size, size)
    assert channel_ranges(3.0, 3) == [3.0, 1.5, 0.75]
    xn = unit_power(x).numpy().astype(np.float64)
    for c, r in enumerate(channel_ranges(3.0, 3)):
        ref = reference_counts(xn, size, r)
        area = (2 * r / size) ** 2  # each zoom has its own bin area
        assert np.array_equal(np.rint(img[:, c].double().numpy() * x.shape[1] * area), ref)


def test_renderer_reuses_its_buffer_and_chunks_agree() -> None:
    x = torch.from_numpy(frames(2))
    r = Renderer(64)
    whole = r(x).clone()
    parts = torch.cat([r(x[:5]).clone(), r(x[5:]).clone()])
    assert torch.equal(whole, parts)
    assert torch.equal(render(x, 64), whole)


def test_float16_storage_moves_few_samples() -> None:
    """What data.ram_dtype = "float16" changes: bins of the float16 round trip vs float32."""
    x = torch.from_numpy(frames())
    a = bin_counts(unit_power(x), 64, [3.0])
    b = bin_counts(unit_power(x.half().float()), 64, [3.0])
    moved = int((a - b).abs().sum()) // 2
    assert moved < 0.02 * x.shape[0] * x.shape[1]  # under 2 % of samples shift one bin
