"""The synthetic generator: exact file layout, determinism, atomic writes, and the physics of
the signals (constellations after matched filtering, SNR, power, OQPSK offset)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from amc_tui.data import synth as S
from amc_tui.data.classes import CLASSES, DIGITAL, SNRS
from amc_tui.data.radioml import DataError

LINEAR_DIGITAL = [c for c in DIGITAL if c != "OQPSK"]


def matched_filter(iq: np.ndarray) -> np.ndarray:
    """RRC matched filter aligned so a pulse peaking at sample j still peaks at j."""
    h = S.rrc_taps()
    return np.convolve(iq, h)[len(h) // 2 : len(h) // 2 + len(iq)]


def evm(received: np.ndarray, sent: np.ndarray) -> float:
    """RMS error vector after a least-squares complex gain, relative to the symbol power."""
    g = np.vdot(sent, received) / np.vdot(sent, sent)
    return float(np.sqrt(np.mean(np.abs(received / g - sent) ** 2) / np.mean(np.abs(sent) ** 2)))


# --------------------------------------------------------------------------- constellations


@pytest.mark.parametrize(
    ("name", "m"),
    [("OOK", 2), ("4ASK", 4), ("8ASK", 8), ("BPSK", 2), ("QPSK", 4), ("8PSK", 8),
     ("16PSK", 16), ("32PSK", 32), ("16APSK", 16), ("32APSK", 32), ("64APSK", 64),
     ("128APSK", 128), ("16QAM", 16), ("32QAM", 32), ("64QAM", 64), ("128QAM", 128),
     ("256QAM", 256), ("OQPSK", 4)],
)  # fmt: skip
def test_constellation_points(name: str, m: int) -> None:
    pts = S.constellation(name)
    assert len(pts) == m
    assert len(np.unique(np.round(pts, 9))) == m
    assert np.mean(np.abs(pts) ** 2) == pytest.approx(1.0)


def test_constellation_shapes() -> None:
    assert np.allclose(S.constellation("8ASK").imag, 0)  # amplitude only
    assert np.allclose(np.abs(S.constellation("32PSK")), 1.0)  # one ring
    radii = np.unique(np.round(np.abs(S.constellation("32APSK")), 6), return_counts=True)
    assert radii[1].tolist() == [4, 12, 16]  # DVB-S2 4+12+16 rings
    radii = np.unique(np.round(np.abs(S.constellation("16APSK")), 6), return_counts=True)
    assert radii[1].tolist() == [4, 12]
    for name, side in (("32QAM", 6), ("128QAM", 12)):  # cross: square grid minus corners
        pts = S.constellation(name)
        levels = np.unique(np.round(pts.real / np.min(np.abs(pts.real)), 6))
        assert len(levels) == side
        corner = np.max(np.abs(pts.real)) + 1j * np.max(np.abs(pts.imag))
        assert np.min(np.abs(pts - corner)) > 1e-6
    assert not np.allclose(S.constellation("32QAM"), S.constellation("32APSK"))


def test_rrc_taps() -> None:
    h = S.rrc_taps()
    assert len(h) == S.RRC_SPAN * S.SPS + 1 and np.argmax(h) == len(h) // 2
    assert np.sum(h**2) == pytest.approx(1.0)
    # raised cosine (h * h) is Nyquist: near zero at other symbol instants
    rc = np.convolve(h, h)
    centre = len(rc) // 2
    others = rc[centre % S.SPS :: S.SPS]
    others = np.delete(others, centre // S.SPS)
    assert np.max(np.abs(others)) < 0.02 * rc[centre]


# --------------------------------------------------------------------------- physics


@pytest.mark.parametrize("name", LINEAR_DIGITAL)
def test_matched_filter_recovers_constellation(name: str) -> None:
    rng = np.random.default_rng(11)
    mod = S.modulate(name, 3, rng)
    for f in range(3):
        j, k = S.symbol_peaks(int(mod.offset[f]))
        assert len(j) > 100
        received = matched_filter(mod.iq[f])[j]
        sent = mod.symbols[f, k]
        assert evm(received, sent) < 0.03, name
        # and decisions to the nearest ideal point are all right
        g = np.vdot(sent, received) / np.vdot(sent, sent)
        pts = S.constellation(name)
        decided = pts[np.argmin(np.abs(received[:, None] / g - pts[None, :]), axis=1)]
        assert np.allclose(decided, sent)


def test_wrong_timing_breaks_the_constellation() -> None:
    """The EVM check can fail: half a symbol off, 16QAM is unrecognisable."""
    rng = np.random.default_rng(1)
    mod = S.modulate("16QAM", 1, rng)
    j, k = S.symbol_peaks(int(mod.offset[0]))
    received = matched_filter(mod.iq[0])[j + S.SPS // 2]
    assert evm(received, mod.symbols[0, k]) > 0.3


def test_oqpsk_q_lags_i_by_half_a_symbol() -> None:
    """Blind: the eye of each rail is most open at its own symbol instants; OQPSK's Q rail's
    instants are SPS/2 samples after I's, QPSK's coincide."""

    def eye_phase(x: np.ndarray) -> int:
        return int(np.argmin([np.var(np.abs(x[p :: S.SPS])) for p in range(S.SPS)]))

    rng = np.random.default_rng(3)
    for name, lag in (("OQPSK", S.SPS // 2), ("QPSK", 0)):
        mod = S.modulate(name, 4, rng)
        for f in range(4):
            mf = matched_filter(mod.iq[f])[64:-64]
            assert (eye_phase(mf.imag) - eye_phase(mf.real)) % S.SPS == lag, name
    # and OQPSK's rails each land on +-1/sqrt(2) at their own instants
    mod = S.modulate("OQPSK", 1, rng)
    j, k = S.symbol_peaks(int(mod.offset[0]))
    mf = matched_filter(mod.iq[0])
    assert evm(mf[j].real, mod.symbols[0, k].real) < 0.03
    assert evm(mf[j[:-1] + S.SPS // 2].imag, mod.symbols[0, k[:-1]].imag) < 0.03


@pytest.mark.parametrize("snr_db", [10, 20, 30])
def test_snr_matches_label(snr_db: int) -> None:
    """Against the known clean signal, each frame's SNR is its label within 1 dB."""
    n = 8
    for name in ("QPSK", "64QAM", "GMSK", "AM-DSB-WC"):
        rng = S.cell_rng(0, name, snr_db)
        clean = S.channel(S.modulate(name, n, rng).iq, rng)
        noisy = S.add_awgn(clean, snr_db, rng)
        measured = 10 * np.log10(
            np.sum(np.abs(clean) ** 2, axis=1) / np.sum(np.abs(noisy - clean) ** 2, axis=1)
        )
        assert np.all(np.abs(measured - snr_db) < 1.0), (name, measured)


@pytest.mark.parametrize("snr_db", [10, 20, 30])
def test_blind_snr_of_written_frames(snr_db: int) -> None:
    """Blind: noise power from the empty spectrum outside the RRC band (|f| > 0.15 cycles/
    sample, Hann window), signal = total - noise. A cell's mean is its label within 1 dB."""
    for name in ("BPSK", "16QAM", "32APSK", "OQPSK"):
        frames = S.make_cell(name, snr_db, 16, seed=2)
        iq = frames[..., 0] + 1j * frames[..., 1]
        spec = np.abs(np.fft.fft(iq * np.hanning(iq.shape[1]), axis=1)) ** 2
        freq = np.abs(np.fft.fftfreq(iq.shape[1]))
        noise = spec[:, freq > 0.15].mean(axis=1) * iq.shape[1]
        est = 10 * np.log10((spec.sum(axis=1) - noise) / noise)
        assert abs(np.mean(est) - snr_db) < 1.0, (name, est)


@pytest.mark.parametrize("name", CLASSES)
def test_unit_power_and_finite(name: str) -> None:
    frames = S.make_cell(name, 4, 6, seed=1)
    assert frames.shape == (6, 1024, 2) and frames.dtype == np.float32
    assert np.all(np.isfinite(frames))
    np.testing.assert_allclose(np.sum(frames**2, axis=(1, 2)) / 1024, 1.0, rtol=1e-4)


def test_analogue_models() -> None:
    rng = np.random.default_rng(4)
    gmsk = S.modulate("GMSK", 2, rng).iq
    np.testing.assert_allclose(np.abs(gmsk), 1.0, rtol=1e-4)  # constant envelope
    fm = S.modulate("FM", 2, rng).iq
    np.testing.assert_allclose(np.abs(fm), 1.0, rtol=1e-4)
    dsb = S.modulate("AM-DSB-SC", 2, rng).iq
    assert np.allclose(dsb.imag, 0) and np.mean(dsb.real) == pytest.approx(0, abs=0.2)
    wc = S.modulate("AM-DSB-WC", 2, rng).iq
    assert np.all(wc.real > 0)  # carrier keeps the envelope positive (index 0.5)
    ssb = S.modulate("AM-SSB-SC", 2, rng).iq
    spec = np.abs(np.fft.fft(ssb, axis=1)) ** 2
    neg = spec[:, 513:].sum() / spec.sum()
    assert neg < 1e-3  # one sideband only
    ook = S.modulate("OOK", 1, rng)
    assert set(np.round(np.abs(ook.symbols[0]) / np.abs(ook.symbols[0]).max(), 6)) == {0, 1}


def test_carrier_offset_is_small() -> None:
    """Phase drift over a frame stays within CFO_MAX: constellations are not smeared away."""
    rng = np.random.default_rng(5)
    ones = np.ones((200, 1024), dtype=np.complex64)
    rotated = S.channel(ones, rng)
    drift = np.angle(rotated[:, -1] * np.conj(rotated[:, 0])) / (2 * np.pi * 1023)
    assert np.max(np.abs(drift)) <= S.CFO_MAX * 1.0001
    assert np.max(np.abs(drift)) > S.CFO_MAX / 4  # and it is really applied


# --------------------------------------------------------------------------- files


def test_file_layout_exact(tmp_path: Path) -> None:
    p = tmp_path / "s.h5"
    n = S.synthesize(p, classes="digital", frames_per_cell=2, snr_min=26, snr_max=30)
    assert n == 17 * 3 * 2
    with h5py.File(p, "r") as f:
        x, y, z = f["X"], f["Y"][...], f["Z"][...]
        assert x.shape == (n, 1024, 2) and x.dtype == np.float32 and x.chunks is None
        assert y.shape == (n, 24) and y.dtype == np.int64
        assert z.shape == (n, 1) and z.dtype == np.int64
    assert np.all(y.sum(axis=1) == 1) and set(np.unique(y)) == {0, 1}
    cls = y.argmax(axis=1)
    assert [CLASSES[c] for c in cls[::6]] == list(DIGITAL)  # grouped by class, paper order
    assert z[:6, 0].tolist() == [26, 26, 28, 28, 30, 30]  # then by SNR
    assert not list(tmp_path.glob(".*tmp"))


def test_deterministic_and_cell_independent(tmp_path: Path) -> None:
    a, b, c, d = (tmp_path / f"{k}.h5" for k in "abcd")
    S.synthesize(a, classes=["QPSK", "FM"], frames_per_cell=3, snr_min=0, snr_max=4, seed=9)
    S.synthesize(b, classes=["QPSK", "FM"], frames_per_cell=3, snr_min=0, snr_max=4, seed=9)
    S.synthesize(c, classes=["QPSK", "FM"], frames_per_cell=3, snr_min=0, snr_max=4, seed=10)
    S.synthesize(d, classes=["FM"], frames_per_cell=3, snr_min=2, snr_max=2, seed=9)
    read = {k: h5py.File(k, "r")["X"][...] for k in (a, b, c, d)}
    assert np.array_equal(read[a], read[b])
    assert not np.allclose(read[a], read[c])
    assert np.array_equal(read[a][9 + 3 : 9 + 6], read[d])  # FM @ 2 dB, whatever else


def test_crash_leaves_no_file(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "s.h5"

    def boom(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        S.synthesize(p, classes=["BPSK"], frames_per_cell=2, progress=boom)
    assert list(p.parent.iterdir()) == []


def test_progress_and_overwrite(tmp_path: Path) -> None:
    p = tmp_path / "s.h5"
    p.write_text("old")
    seen = []
    S.synthesize(p, classes=["BPSK", "QPSK"], frames_per_cell=1, snr_min=0, snr_max=2,
                 progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert h5py.is_hdf5(p)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"snr_min": 3}, "snr_min = 3 is off the SNR grid"),
     ({"snr_max": 32}, "snr_max = 32 is off the SNR grid"),
     ({"snr_min": 10, "snr_max": 0}, "empty SNR range"),
     ({"classes": ["QPSK", "QPKS"]}, "unknown class name"),
     ({"frames_per_cell": 0}, "frames_per_cell = 0")],
)  # fmt: skip
def test_bad_arguments(tmp_path: Path, kwargs: dict, text: str) -> None:
    with pytest.raises(DataError, match=text):
        S.synthesize(tmp_path / "s.h5", **kwargs)
    assert not (tmp_path / "s.h5").exists()


def test_all_classes_and_names_case_insensitive(tmp_path: Path) -> None:
    p = tmp_path / "all.h5"
    assert S.synthesize(p, classes="all", frames_per_cell=1, snr_min=30, snr_max=30) == 24
    with h5py.File(p, "r") as f:
        assert f["Y"][...].argmax(axis=1).tolist() == list(range(24))
    assert S.synthesize(p, classes=["qpsk", "Bpsk"], frames_per_cell=1) == 2 * len(SNRS)


def test_large_cells_are_made_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "CELL_BATCH", 4)
    a = S.make_cell("16QAM", 20, 10, seed=3)
    assert np.array_equal(a, S.make_cell("16QAM", 20, 10, seed=3))
    assert len(np.unique(a[:, 100, 0])) == 10  # every frame its own
    np.testing.assert_allclose(np.sum(a**2, axis=(1, 2)) / 1024, 1.0, rtol=1e-4)
