"""Synthetic RadioML 2018.01A-layout files with real, learnable signals (numpy + h5py only).

Why: the real file is 20 GB and not redistributable; tests, CI and the demo need a small file
in the exact DeepSig layout whose frames behave like radio signals, so that a model can learn
from them and physics checks can be made on them.

Signal model (per frame, 1024 complex samples at 8 samples/symbol):
- digital classes: random symbols from the class's constellation (unit average power),
  root-raised-cosine pulse shaping (roll-off 0.35, span 8 symbols), OQPSK with Q delayed by
  half a symbol; OOK is unipolar on/off keying with the same pulse;
- analogue classes ("all"): a band-limited random message (audio-like) driving AM-DSB with and
  without carrier, AM-SSB (analytic signal) with and without carrier, FM, and GMSK (BT 0.3,
  h 0.5);
- channel: random integer timing offset (0..7 samples = 1/8-symbol steps), uniform random
  carrier phase, carrier frequency offset uniform in +-CFO_MAX cycles/sample (5e-5: at most
  18 degrees of rotation over a frame, so high-SNR constellations stay recognisable while
  still being slightly smeared as in the real data), AWGN at the cell's SNR (signal power over
  noise power in the full sampled band), then unit average power per frame.

Every (class, SNR) cell draws from its own generator seeded by (seed, class, SNR), so a cell's
frames do not depend on which other cells are written. A cell is generated as one vectorised
batch (up to CELL_BATCH frames): about 7-9 k frames per CPU-second on one core.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from amc_tui.data.classes import (
    CLASS_INDEX,
    FRAME_LEN,
    N_CLASSES,
    SNR_MAX,
    SNR_MIN,
    SNR_STEP,
    resolve_classes,
    snr_range,
)
from amc_tui.errors import DataError

SPS = 8  # samples per symbol
RRC_BETA = 0.35
RRC_SPAN = 8  # symbols
CFO_MAX = 5e-5  # cycles/sample
GMSK_BT = 0.3
FM_DEVIATION = 0.03  # cycles/sample per unit-RMS message
MESSAGE_BAND = 0.02  # cycles/sample: bandwidth of the analogue message
AM_INDEX = 0.5  # modulation index of the carrier-carrying AM classes
WRITE_ROWS = 2048  # frames buffered per HDF5 write (16 MB)
CELL_BATCH = 4096  # frames generated at once (~200 MB of temporaries at most)

ANALOG = ("AM-SSB-WC", "AM-SSB-SC", "AM-DSB-WC", "AM-DSB-SC", "FM", "GMSK")

# --------------------------------------------------------------------------- constellations


def _unit_power(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.complex128)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def _psk(m: int, offset: float = 0.0) -> np.ndarray:
    return np.exp(1j * (2 * np.pi * np.arange(m) / m + offset))


def _ask(m: int) -> np.ndarray:
    return np.arange(-(m - 1), m, 2).astype(np.complex128)


def _square_qam(m: int) -> np.ndarray:
    side = int(round(np.sqrt(m)))
    levels = np.arange(-(side - 1), side, 2)
    return (levels[:, None] + 1j * levels[None, :]).ravel()


def _cross_qam(side: int, corner: int) -> np.ndarray:
    """A side x side grid with corner x corner blocks removed at the four corners."""
    levels = np.arange(-(side - 1), side, 2)
    i, q = np.meshgrid(levels, levels, indexing="ij")
    edge = side - 1 - 2 * corner  # |level| above this is in a corner band
    keep = ~((np.abs(i) > edge) & (np.abs(q) > edge))
    return (i[keep] + 1j * q[keep]).ravel()


def _apsk(rings: tuple[int, ...], radii: tuple[float, ...]) -> np.ndarray:
    """DVB-S2-style rings: n points per ring, each ring rotated by pi/n."""
    return np.concatenate([r * _psk(n, np.pi / n) for n, r in zip(rings, radii, strict=True)])


_CONSTELLATIONS: dict[str, Callable[[], np.ndarray]] = {
    "OOK": lambda: np.array([0.0, 1.0], dtype=np.complex128),
    "4ASK": lambda: _ask(4),
    "8ASK": lambda: _ask(8),
    "BPSK": lambda: _psk(2),
    "QPSK": lambda: _psk(4, np.pi / 4),
    "OQPSK": lambda: _psk(4, np.pi / 4),
    "8PSK": lambda: _psk(8),
    "16PSK": lambda: _psk(16),
    "32PSK": lambda: _psk(32),
    "16APSK": lambda: _apsk((4, 12), (1.0, 2.57)),
    "32APSK": lambda: _apsk((4, 12, 16), (1.0, 2.53, 4.30)),
    "64APSK": lambda: _apsk((4, 12, 20, 28), (1.0, 2.2, 3.6, 5.2)),
    "128APSK": lambda: _apsk((8, 16, 24, 32, 48), (1.0, 1.9, 2.8, 3.7, 4.7)),
    "16QAM": lambda: _square_qam(16),
    "32QAM": lambda: _cross_qam(6, 1),
    "64QAM": lambda: _square_qam(64),
    "128QAM": lambda: _cross_qam(12, 2),
    "256QAM": lambda: _square_qam(256),
}
LINEAR = tuple(_CONSTELLATIONS)  # classes made by pulse-shaping constellation symbols


def constellation(name: str) -> np.ndarray:
    """The ideal symbol points of a linearly modulated class, unit average power (ASK is
    symmetric amplitude levels on the I axis; OOK is {0, a})."""
    if name not in _CONSTELLATIONS:
        raise KeyError(f"{name} has no constellation (analogue or unknown class)")
    return _unit_power(_CONSTELLATIONS[name]())


# --------------------------------------------------------------------------- pulse shaping


@functools.lru_cache(maxsize=8)
def _rrc_cached(beta: float, span: int, sps: int) -> np.ndarray:
    return _rrc(beta, span, sps)


def rrc_taps(beta: float = RRC_BETA, span: int = RRC_SPAN, sps: int = SPS) -> np.ndarray:
    """Root-raised-cosine taps (span*sps + 1 of them), unit energy, peak at the centre."""
    return _rrc_cached(float(beta), int(span), int(sps)).copy()


def _rrc(beta: float = RRC_BETA, span: int = RRC_SPAN, sps: int = SPS) -> np.ndarray:
    """Root-raised-cosine taps (span*sps + 1 of them), unit energy, peak at the centre."""
    t = np.arange(-span * sps // 2, span * sps // 2 + 1) / sps  # in symbols
    taps = np.empty_like(t)
    for k, tk in enumerate(t):
        if abs(tk) < 1e-12:
            taps[k] = 1 - beta + 4 * beta / np.pi
        elif beta > 0 and abs(abs(4 * beta * tk) - 1) < 1e-9:
            taps[k] = (beta / np.sqrt(2)) * (
                (1 + 2 / np.pi) * np.sin(np.pi / (4 * beta))
                + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta))
            )
        else:
            num = np.sin(np.pi * tk * (1 - beta)) + 4 * beta * tk * np.cos(np.pi * tk * (1 + beta))
            taps[k] = num / (np.pi * tk * (1 - (4 * beta * tk) ** 2))
    return taps / np.sqrt(np.sum(taps**2))


def gaussian_freq_pulse(bt: float = GMSK_BT, sps: int = SPS, span: int = 4) -> np.ndarray:
    """GMSK frequency pulse: a one-symbol rectangle through a Gaussian filter, area 1 symbol."""
    t = np.arange(-span * sps // 2, span * sps // 2 + 1) / sps
    sigma = np.sqrt(np.log(2)) / (2 * np.pi * bt)
    g = np.exp(-(t**2) / (2 * sigma**2))
    pulse = np.convolve(np.ones(sps), g / g.sum())
    return pulse / pulse.sum() * sps  # sums to sps samples -> one symbol of area 1


def shape(symbols: np.ndarray, taps: np.ndarray, sps: int = SPS) -> np.ndarray:
    """Upsample by `sps` and filter with `taps`, for a whole batch at once (polyphase).

    symbols (n, k) real or complex -> float32/complex64 (n, (k + m - 1) * sps) with
    m = ceil(len(taps) / sps); output sample j*sps + p is sum_i symbols[j - i] *
    taps[i*sps + p]. Plain numpy multiply-adds, not BLAS: as fast single-threaded, immune to
    thread oversubscription, and bit-identical on every machine."""
    if np.iscomplexobj(symbols):
        return shape(symbols.real, taps, sps) + 1j * shape(symbols.imag, taps, sps)
    n, k = symbols.shape
    m = -(-len(taps) // sps)
    poly = np.zeros(m * sps, dtype=np.float64)
    poly[: len(taps)] = taps
    poly = poly.reshape(m, sps)[::-1].astype(np.float32)
    padded = np.zeros((n, k + 2 * (m - 1)), dtype=np.float32)
    padded[:, m - 1 : m - 1 + k] = symbols
    width = k + m - 1
    out = np.empty((sps, n, width), dtype=np.float32)
    for p in range(sps):
        acc = padded[:, 0:width] * poly[0, p]
        for i in range(1, m):
            acc += padded[:, i : i + width] * poly[i, p]
        out[p] = acc
    return out.transpose(1, 2, 0).reshape(n, width * sps)


# --------------------------------------------------------------------------- modulation


@dataclass
class Modulated:
    """Noise-free baseband frames before the channel, plus what a check needs to verify them.

    iq: (n, length) complex64, unit average power per frame.
    symbols: (n, n_symbols) the transmitted constellation points (linear classes) or None.
    offset: (n,) timing offset in samples: frame sample j is pulse-train sample
        `RRC_SPAN * SPS + offset + j`, so symbol k's pulse peaks at frame sample
        `k * SPS + RRC_SPAN * SPS // 2 - RRC_SPAN * SPS - offset`.
    gain: (n,) the factor the pulse train was scaled by to reach unit power.
    """

    iq: np.ndarray
    symbols: np.ndarray | None
    offset: np.ndarray
    gain: np.ndarray


def symbol_peaks(offset: int, length: int = FRAME_LEN) -> tuple[np.ndarray, np.ndarray]:
    """(frame sample indices, symbol indices) where whole RRC pulses peak inside a frame,
    leaving half a span of symbols at each edge (their matched-filter output is truncated)."""
    half = RRC_SPAN * SPS // 2
    first = RRC_SPAN * SPS + offset - half  # pulse-train index of the frame start minus delay
    k = np.arange(0, (length + first) // SPS + 1)
    j = k * SPS - first
    keep = (j >= half) & (j < length - half)
    return j[keep], k[keep]


def _message(n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited random real message, zero mean, unit RMS (an audio stand-in)."""
    spec = np.fft.rfft(rng.standard_normal((n, length)), axis=1)
    freqs = np.fft.rfftfreq(length)
    spec[:, (freqs > MESSAGE_BAND) | (freqs == 0)] = 0
    msg = np.fft.irfft(spec, n=length, axis=1)
    return msg / np.sqrt(np.mean(msg**2, axis=1, keepdims=True))


def _analytic(x: np.ndarray) -> np.ndarray:
    """x + j*Hilbert(x) along the last axis: the upper-sideband signal of a real message."""
    length = x.shape[-1]
    spec = np.fft.fft(x, axis=-1)
    h = np.zeros(length)
    h[0] = 1
    h[1 : (length + 1) // 2] = 2
    if length % 2 == 0:
        h[length // 2] = 1
    return np.fft.ifft(spec * h, axis=-1)


def _expj(angle: np.ndarray) -> np.ndarray:
    """exp(j*angle) as complex64, via float32 cos/sin (much faster than a complex exp)."""
    angle = np.asarray(angle, dtype=np.float32)
    out = np.empty(angle.shape, dtype=np.complex64)
    out.real, out.imag = np.cos(angle), np.sin(angle)
    return out


def modulate(name: str, n: int, rng: np.random.Generator, length: int = FRAME_LEN) -> Modulated:
    """`n` noise-free complex64 frames of class `name` (before phase, frequency offset and
    noise), unit average power each."""
    offset = rng.integers(0, SPS, size=n)
    symbols = None
    if name in LINEAR:
        points = constellation(name)
        n_sym = length // SPS + RRC_SPAN + 2
        symbols = points[rng.integers(0, len(points), size=(n, n_sym))]
        taps = rrc_taps()
        idx = RRC_SPAN * SPS + offset[:, None] + np.arange(length)[None, :]
        if name == "OQPSK":  # Q rail half a symbol late
            i_rail = np.take_along_axis(shape(symbols.real, taps), idx, 1)
            q_rail = np.take_along_axis(shape(symbols.imag, taps), idx - SPS // 2, 1)
            iq = np.empty((n, length), dtype=np.complex64)
            iq.real, iq.imag = i_rail, q_rail
        else:
            iq = np.take_along_axis(shape(symbols, taps), idx, 1)
    elif name == "GMSK":
        bits = rng.choice(np.array([-1.0, 1.0]), size=(n, length // SPS + 8))
        freq = shape(bits, gaussian_freq_pulse()).astype(np.float64)
        phase = np.cumsum(freq, axis=1) * (np.pi * 0.5 / SPS)  # modulation index h = 0.5
        idx = 4 * SPS + offset[:, None] + np.arange(length)[None, :]
        iq = _expj(np.take_along_axis(phase, idx, 1))
    elif name == "FM":
        msg = _message(n, length, rng)
        iq = _expj(2 * np.pi * FM_DEVIATION * np.cumsum(msg, axis=1))
    elif name in ("AM-DSB-WC", "AM-DSB-SC", "AM-SSB-WC", "AM-SSB-SC"):
        msg = _message(n, length, rng)
        if name.startswith("AM-SSB"):
            msg = _analytic(msg)
        if name.endswith("WC"):
            msg = 1 + AM_INDEX * msg / np.max(np.abs(msg), axis=1, keepdims=True)
        iq = msg.astype(np.complex64)
    else:
        raise KeyError(f"cannot synthesise class {name!r}")
    iq = np.asarray(iq, dtype=np.complex64)
    gain = (1 / np.sqrt(np.mean(iq.real**2 + iq.imag**2, axis=1))).astype(np.float32)
    return Modulated(iq * gain[:, None], symbols, offset, gain)


def channel(iq: np.ndarray, rng: np.random.Generator, cfo_max: float = CFO_MAX) -> np.ndarray:
    """Random carrier phase and carrier frequency offset per frame (complex64 out)."""
    n, length = iq.shape
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    cfo = rng.uniform(-cfo_max, cfo_max, size=(n, 1))
    rot = _expj(phase + 2 * np.pi * cfo * np.arange(length)[None, :])
    return iq.astype(np.complex64, copy=False) * rot


def add_awgn(iq: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Complex white Gaussian noise at `snr_db` relative to each frame's own power."""
    n, length = iq.shape
    power = np.mean(iq.real**2 + iq.imag**2, axis=1, keepdims=True)
    sigma = np.sqrt(power * 10 ** (-snr_db / 10) / 2).astype(np.float32)
    noise = rng.standard_normal((n, length * 2), dtype=np.float32).view(np.complex64)
    noise *= sigma
    noise += iq
    return noise


def to_frames(iq: np.ndarray) -> np.ndarray:
    """complex (n, L) -> float32 (n, L, 2) I/Q at unit average power per frame."""
    iq = np.asarray(iq, dtype=np.complex64)
    scale = 1 / np.sqrt(np.mean(iq.real**2 + iq.imag**2, axis=1, keepdims=True))
    out = iq * scale.astype(np.float32)
    return out.view(np.float32).reshape(*iq.shape, 2)


def cell_rng(seed: int, name: str, snr_db: int) -> np.random.Generator:
    """The generator of one (class, SNR) cell, independent of every other cell."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed % 2**63, CLASS_INDEX[name], snr_db - SNR_MIN]))
    )


def make_cell(name: str, snr_db: int, n: int, seed: int = 0) -> np.ndarray:
    """The float32 (n, 1024, 2) frames of one cell, exactly as `synthesize` writes them.

    Made in batches of CELL_BATCH frames from the cell's one generator, which bounds memory
    for huge cells without making the frames depend on anything but (seed, class, SNR, n)."""
    rng = cell_rng(seed, name, snr_db)
    out = np.empty((n, FRAME_LEN, 2), dtype=np.float32)
    for a in range(0, n, CELL_BATCH):
        b = min(n, a + CELL_BATCH)
        clean = modulate(name, b - a, rng)
        out[a:b] = to_frames(add_awgn(channel(clean.iq, rng), snr_db, rng))
    return out


# --------------------------------------------------------------------------- file


def _check_args(
    classes: str | list[str], frames_per_cell: int, snr_min: int, snr_max: int
) -> tuple[list[str], list[int]]:
    try:
        names = resolve_classes(classes)
    except ValueError as e:
        raise DataError(f"synth: {e}") from None
    for label, v in (("snr_min", snr_min), ("snr_max", snr_max)):
        if not (SNR_MIN <= v <= SNR_MAX and (v - SNR_MIN) % SNR_STEP == 0):
            raise DataError(
                f"synth: {label} = {v} is off the SNR grid; expected {SNR_MIN}..{SNR_MAX} "
                f"in steps of {SNR_STEP}"
            )
    snrs = snr_range(snr_min, snr_max)
    if not snrs:
        raise DataError(f"synth: empty SNR range {snr_min}..{snr_max}; need snr_min <= snr_max")
    if int(frames_per_cell) < 1:
        raise DataError(f"synth: frames_per_cell = {frames_per_cell}; expected >= 1")
    return names, snrs


def synthesize(
    path: str | os.PathLike[str],
    classes: str | list[str] = "digital",
    frames_per_cell: int = 64,
    snr_min: int = SNR_MIN,
    snr_max: int = SNR_MAX,
    seed: int = 0,
    chunked: bool = False,
    compression: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write a DeepSig-layout file (X float32 (N,1024,2), Y int64 one-hot (N,24) in paper
    order, Z int64 (N,1)), rows grouped by class then SNR; returns N.

    The file appears atomically: it is written under a temporary name in the same folder and
    renamed at the end, so an interrupted run leaves no half file. `chunked`/`compression`
    ("gzip", "lzf") make the non-contiguous layouts the reader must also handle.
    `progress(done_cells, total_cells)` is called after each cell.
    """
    names, snrs = _check_args(classes, frames_per_cell, snr_min, snr_max)
    fpc = int(frames_per_cell)
    n_total = len(names) * len(snrs) * fpc
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    opts: dict[str, object] = {}
    if chunked or compression:
        opts["chunks"] = (min(256, n_total), FRAME_LEN, 2)
    if compression:
        opts["compression"] = compression
    try:
        with h5py.File(tmp, "w") as f:
            x = f.create_dataset("X", shape=(n_total, FRAME_LEN, 2), dtype=np.float32, **opts)
            label_opts: dict[str, object] = {"compression": compression} if compression else {}
            y = f.create_dataset("Y", shape=(n_total, N_CLASSES), dtype=np.int64, **label_opts)
            z = f.create_dataset("Z", shape=(n_total, 1), dtype=np.int64, **label_opts)
            cells = [(name, snr) for name in names for snr in snrs]
            row, pending = 0, []
            for done, (name, snr) in enumerate(cells, 1):
                pending.append((name, snr, make_cell(name, snr, fpc, seed)))
                if len(pending) * fpc >= WRITE_ROWS or done == len(cells):
                    block = np.concatenate([p[2] for p in pending])
                    labels = np.zeros((len(block), N_CLASSES), dtype=np.int64)
                    labels[
                        np.arange(len(block)), np.repeat([CLASS_INDEX[p[0]] for p in pending], fpc)
                    ] = 1
                    x[row : row + len(block)] = block
                    y[row : row + len(block)] = labels
                    z[row : row + len(block), 0] = np.repeat([p[1] for p in pending], fpc)
                    row += len(block)
                    pending = []
                if progress is not None:
                    progress(done, len(cells))
            f.attrs["generator"] = "amc-tui synth"
            f.attrs["seed"] = seed
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return n_total
