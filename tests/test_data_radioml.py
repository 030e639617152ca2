"""RadioML file validation, label reading, layouts and `inspect_file` on real HDF5 files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import one_hot, synth_small_file, write_radioml

from amc_tui.data.classes import DIGITAL, FRAME_LEN, N_CLASSES
from amc_tui.data.radioml import DataError, RadioMLFile, format_inspection, inspect_file
from amc_tui.data.synth import synthesize
from amc_tui.errors import UserError

N = 6


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_small_file(tmp_path_factory)


def good_arrays(n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, FRAME_LEN, 2)).astype(np.float32)
    cls = np.arange(n) % N_CLASSES
    z = (np.arange(n) % 26 * 2 - 20)[:, None].astype(np.int64)
    return x, one_hot(cls), z


def open_error(path: Path) -> str:
    with pytest.raises(DataError) as info, RadioMLFile.open(path) as f:
        f.labels()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_data_error_is_user_error() -> None:
    assert issubclass(DataError, UserError)


def test_missing_file_names_path_and_synth(tmp_path: Path) -> None:
    msg = open_error(tmp_path / "nope.h5")
    assert str(tmp_path / "nope.h5") in msg
    assert "not found" in msg
    assert f"amc-tui data synth {tmp_path / 'nope.h5'}" in msg


def test_not_hdf5(tmp_path: Path) -> None:
    p = tmp_path / "fake.h5"
    p.write_text("this is not hdf5\n")
    msg = open_error(p)
    assert "not an HDF5 file" in msg and str(p) in msg


@pytest.mark.parametrize("missing", ["X", "Y", "Z"])
def test_missing_dataset(tmp_path: Path, missing: str) -> None:
    arrays = dict(zip("XYZ", good_arrays(), strict=True))
    arrays[missing] = None
    p = write_radioml(tmp_path / "f.h5", arrays["X"], arrays["Y"], arrays["Z"])
    msg = open_error(p)
    assert f"dataset '{missing}' missing" in msg
    assert "expected X, Y, Z" in msg
    assert str(p) in msg


def test_x_wrong_shape(tmp_path: Path) -> None:
    _, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", np.zeros((N, 512, 2), np.float32), y, z)
    msg = open_error(p)
    assert "dataset 'X' has shape (6, 512, 2)" in msg
    assert "expected (N, 1024, 2)" in msg


def test_x_wrong_dtype(tmp_path: Path) -> None:
    _, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", np.zeros((N, FRAME_LEN, 2), np.int16), y, z)
    msg = open_error(p)
    assert "dataset 'X' has dtype int16" in msg and "expected float32" in msg


def test_y_wrong_width(tmp_path: Path) -> None:
    x, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", x, y[:, :11], z)
    msg = open_error(p)
    assert "dataset 'Y' has shape (6, 11)" in msg and "expected (N, 24)" in msg


@pytest.mark.parametrize(
    "row", [[1, 0, 0, 1] + [0] * 20, [0] * 24, [0, 0, 0, 2] + [0] * 20, [0.5, 0.5] + [0] * 22]
)
def test_y_not_one_hot(tmp_path: Path, row: list[float]) -> None:
    x, y, z = good_arrays()
    y = y.astype(np.float64) if 0.5 in row else y
    y[3] = row
    p = write_radioml(tmp_path / "f.h5", x, y, z)
    msg = open_error(p)
    assert "dataset 'Y' row 3 is not one-hot" in msg
    assert "expected exactly one 1 and 23 zeros" in msg


@pytest.mark.parametrize("bad", [3, 32, -22])
def test_z_off_grid(tmp_path: Path, bad: int) -> None:
    x, y, z = good_arrays()
    z[4, 0] = bad
    p = write_radioml(tmp_path / "f.h5", x, y, z)
    msg = open_error(p)
    assert f"dataset 'Z' row 4 is {bad}" in msg
    assert "-20..30 step 2" in msg


def test_z_wrong_shape(tmp_path: Path) -> None:
    x, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", x, y, np.repeat(z, 2, axis=1))
    assert "dataset 'Z' has shape (6, 2); expected (N, 1)" in open_error(p)


def test_row_count_mismatch(tmp_path: Path) -> None:
    x, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", x, y[:5], z)
    msg = open_error(p)
    assert "differ in row count" in msg and "X 6, Y 5, Z 6" in msg


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_x_accepted_with_note(tmp_path: Path, dtype: type) -> None:
    x, y, z = good_arrays()
    p = write_radioml(tmp_path / "f.h5", x.astype(dtype), y, z)
    with RadioMLFile.open(p) as f:
        assert f.x_dtype == np.dtype(dtype)
        assert any(np.dtype(dtype).name in n and "float32" in n for n in f.notes)
        got = f.read_x(np.array([1, 4]))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(dtype).astype(np.float32)[[1, 4]])
    report = inspect_file(p)
    assert report["dtypes"]["X"] == np.dtype(dtype).name
    assert any("converted to float32" in m for m in report["problems"])


def test_labels_and_read_x(tmp_path: Path) -> None:
    x, y, z = good_arrays(40)
    p = write_radioml(tmp_path / "f.h5", x, y, z)
    with RadioMLFile.open(p) as f:
        cls, snr = f.labels()
        assert cls.dtype == np.int16 and snr.dtype == np.int16
        np.testing.assert_array_equal(cls, y.argmax(1))
        np.testing.assert_array_equal(snr, z[:, 0])
        rows = np.array([0, 1, 2, 17, 39])
        np.testing.assert_array_equal(f.read_x(rows), x[rows])
        np.testing.assert_array_equal(f.read_x(rows, gap=0), x[rows])


def test_label_blocks_find_late_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-hot check covers every block, not only the first."""
    import amc_tui.data.radioml as rm

    monkeypatch.setattr(rm, "LABEL_BLOCK", 7)
    x, y, z = good_arrays(30)
    y[23, :] = 0
    p = write_radioml(tmp_path / "f.h5", x, y, z)
    assert "row 23 is not one-hot" in open_error(p)


@pytest.mark.parametrize(
    ("opts", "layout"),
    [({}, "contiguous"), ({"chunks": (4, FRAME_LEN, 2)}, "chunked"),
     ({"compression": "gzip"}, "compressed")],
)  # fmt: skip
def test_layouts(tmp_path: Path, opts: dict, layout: str) -> None:
    x, y, z = good_arrays(12)
    p = write_radioml(tmp_path / "f.h5", x, y, z, **opts)
    with RadioMLFile.open(p) as f:
        assert f.layout == layout
        assert (f.x_offset is not None) == (layout == "contiguous")
        rows = np.array([0, 3, 4, 5, 11])
        np.testing.assert_array_equal(f.read_x(rows), x[rows])
        if f.x_offset is not None:
            mm = np.memmap(p, dtype=np.float32, mode="r", offset=f.x_offset, shape=x.shape)
            np.testing.assert_array_equal(mm, x)


def test_inspect_synth_file(synth_small: Path) -> None:
    report = inspect_file(synth_small)
    json.dumps(report)  # JSON-safe
    assert report["frames"] == 17 * 26 * 8
    assert report["cells"] == 442
    assert report["frames_per_cell"] == {"min": 8, "max": 8}
    assert list(report["classes"]) == list(DIGITAL)
    assert set(report["classes"].values()) == {26 * 8}
    assert list(report["snrs"]) == [str(s) for s in range(-20, 31, 2)]
    assert set(report["snrs"].values()) == {17 * 8}
    assert report["layout"] == "contiguous"
    assert report["dtypes"] == {"X": "float32", "Y": "int64", "Z": "int64"}
    assert report["problems"] == []
    text = format_inspection(report)
    assert "442 (17 classes x 26 SNRs), 8 frames per cell" in text
    assert "problems none" in text


def test_inspect_reports_missing_cells(tmp_path: Path) -> None:
    x, y, z = good_arrays(4)
    y = one_hot(np.array([1, 1, 2, 2]))
    z = np.array([[0], [2], [0], [0]], dtype=np.int64)
    report = inspect_file(write_radioml(tmp_path / "f.h5", x, y, z))
    assert report["cells"] == 3
    assert report["frames_per_cell"] == {"min": 1, "max": 2}
    assert any("1 (class, SNR) cells empty" in p and "8ASK@2dB" in p for p in report["problems"])
    assert any("frames per cell vary: 1..2" in p for p in report["problems"])


def test_inspect_compressed_layout(tmp_path: Path) -> None:
    p = tmp_path / "c.h5"
    synthesize(p, classes=["BPSK", "QPSK"], frames_per_cell=3, snr_min=0, snr_max=4,
               compression="gzip")  # fmt: skip
    report = inspect_file(p)
    assert report["layout"] == "compressed" and report["cells"] == 6
    assert "compressed (chunks" in format_inspection(report)


def test_cli_inspect_exit_codes(tmp_path: Path) -> None:
    """Through the real CLI: a malformed file exits 2 with one line, a good one exits 0."""
    bad = write_radioml(tmp_path / "bad.h5", *good_arrays()[:2], None)
    run = [sys.executable, "-m", "amc_tui.cli", "data", "inspect"]
    proc = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset 'Z' missing" in lines[0]
    good = tmp_path / "ok.h5"
    synthesize(good, classes=["BPSK"], frames_per_cell=2, snr_min=0, snr_max=2)
    proc = subprocess.run([*run, str(good), "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cells"] == 2


def test_read_x_bounded_slabs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sparse or block-crossing rows read right whatever the slab boundaries."""
    import amc_tui.data.radioml as rm

    monkeypatch.setattr(rm, "READ_BLOCK", 8)
    x, y, z = good_arrays(50)
    for opts in ({}, {"chunks": (3, FRAME_LEN, 2)}):
        p = write_radioml(tmp_path / "f.h5", x, y, z, **opts)
        with RadioMLFile.open(p) as f:
            for rows in ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [5, 7, 15, 16, 17, 30, 49], [49]):
                np.testing.assert_array_equal(f.read_x(np.array(rows)), x[rows])
            with pytest.raises(ValueError, match="sorted"):
                f.read_x(np.array([3, 2]))
