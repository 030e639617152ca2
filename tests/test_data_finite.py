"""Frames with NaN or inf I/Q samples are refused with the file row, never trained on: the
renderer would turn them into a one-dot image with a finite loss. RAM stores check at load;
memmap and block stores check each batch as it is read."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from amc_tui.config import DataConfig
from amc_tui.data.radioml import DataError
from amc_tui.data.source import load_dataset
from amc_tui.data.synth import synthesize

BAD_ROW = 7


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finite") / "nan.h5"
    synthesize(path, classes=["BPSK", "QPSK"], frames_per_cell=8, snr_min=0, snr_max=2)
    with h5py.File(path, "r+") as f:
        f["X"][BAD_ROW, 100, 1] = np.nan
    return path


def cfg(path: Path) -> DataConfig:
    return DataConfig(path=str(path), classes=["BPSK", "QPSK"], snr_min=0, snr_max=2,
                      split=[0.5, 0.25, 0.25])  # fmt: skip


def test_a_ram_store_refuses_the_file_at_load_naming_the_row(poisoned: Path) -> None:
    with pytest.raises(DataError) as e:
        load_dataset(cfg(poisoned), mode="memory")
    assert f"frame {BAD_ROW} (row of X) has NaN or inf I/Q samples" in str(e.value)


@pytest.mark.parametrize("mode", ["memmap", "blocks"])
def test_a_disk_store_refuses_the_batch_that_holds_the_frame(poisoned: Path, mode: str) -> None:
    with load_dataset(cfg(poisoned), mode=mode) as ds:
        for src in ds.splits.values():
            at = np.flatnonzero(src.rows == BAD_ROW)
            clean = np.flatnonzero(src.rows != BAD_ROW)
            assert np.isfinite(src.get(clean)[0]).all()  # the other frames read as ever
            if len(at):
                with pytest.raises(DataError, match=f"frame {BAD_ROW} "):
                    src.get(np.concatenate([clean[:3], at]))
                return
    raise AssertionError(f"row {BAD_ROW} is in no split")
