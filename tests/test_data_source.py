"""Frame store modes, float16 RAM copies, epoch shuffles and load_dataset on real files."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import synth_small_file

from amc_tui.config import DataConfig
from amc_tui.data.classes import CLASSES as ALL
from amc_tui.data.radioml import DataError, RadioMLFile
from amc_tui.data.source import load_dataset
from amc_tui.data.synth import synthesize

CLASSES = ["BPSK", "QPSK", "8PSK", "16QAM"]


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_small_file(tmp_path_factory)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same frames in the three layouts."""
    root = tmp_path_factory.mktemp("layouts")
    out = {}
    for layout, opts in (("contiguous", {}), ("chunked", {"chunked": True}),
                         ("compressed", {"compression": "gzip"})):  # fmt: skip
        out[layout] = root / f"{layout}.h5"
        synthesize(out[layout], classes=CLASSES, frames_per_cell=12, snr_min=0, snr_max=10,
                   seed=5, **opts)  # fmt: skip
    return out


def cfg(path: Path, **kw: object) -> DataConfig:
    base = {"classes": CLASSES, "snr_min": 0, "snr_max": 10, "split": [0.5, 0.25, 0.25]}
    return DataConfig(path=str(path), **{**base, **kw})


def test_modes_return_identical_frames(files: dict[str, Path]) -> None:
    cases = [("contiguous", "memory"), ("contiguous", "memmap"), ("contiguous", "blocks"),
             ("chunked", "blocks"), ("chunked", "memory"), ("compressed", "blocks")]  # fmt: skip
    rng = np.random.default_rng(0)
    ref: dict[str, tuple] = {}
    for layout, mode in cases:
        with load_dataset(cfg(files[layout]), mode=mode) as ds:
            assert ds.mode == mode and ds.layout == layout
            for name, src in ds.splits.items():
                pos = rng.permutation(len(src))[:20] if name not in ref else ref[name][0]
                pos = np.concatenate([pos, pos[:3]])  # repeats are allowed
                iq, mod, snr = src.get(pos)
                assert iq.shape == (len(pos), 1024, 2) and iq.dtype == np.float32
                assert mod.dtype == np.int64 and snr.dtype == np.int64
                if name in ref:
                    np.testing.assert_array_equal(iq, ref[name][1])
                    np.testing.assert_array_equal(mod, ref[name][2])
                    np.testing.assert_array_equal(snr, ref[name][3])
                else:
                    ref[name] = (pos[:20], iq, mod, snr)
    # and those frames are the file's rows
    with RadioMLFile.open(files["contiguous"]) as f, load_dataset(cfg(files["chunked"])) as ds:
        src = ds.train
        np.testing.assert_array_equal(src.get(np.arange(5))[0], f.read_x(src.rows[:5]))


def test_labels_match_file(files: dict[str, Path]) -> None:
    with RadioMLFile.open(files["contiguous"]) as f, load_dataset(cfg(files["contiguous"])) as ds:
        cls, snr_db = f.labels()
        for src in ds.splits.values():
            _, mod, snr = src.get(np.arange(len(src)))
            assert [ds.classes[m] for m in mod] == [ALL[c] for c in cls[src.rows]]
            assert [ds.snrs[s] for s in snr] == snr_db[src.rows].tolist()


def test_float16_store_within_precision(files: dict[str, Path]) -> None:
    with load_dataset(cfg(files["contiguous"]), mode="memory") as ref, \
            load_dataset(cfg(files["contiguous"], ram_dtype="float16"), mode="memory") as half:  # fmt: skip
        assert half.store.nbytes * 2 == ref.store.nbytes
        pos = np.arange(len(ref.train))
        a, b = ref.train.get(pos)[0], half.train.get(pos)[0]
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=2**-11, atol=2**-24)
        assert not np.array_equal(a, b)  # it really is a float16 copy


def test_order_deterministic_per_seed_and_epoch(synth_small: Path) -> None:
    with load_dataset(DataConfig(path=str(synth_small))) as ds:
        src = ds.train
        n = len(src)
        o1, o1b = src.order(1, 7, True), src.order(1, 7, True)
        o2, other_seed = src.order(2, 7, True), src.order(1, 8, True)
        assert np.array_equal(o1, o1b)
        assert not np.array_equal(o1, o2) and not np.array_equal(o1, other_seed)
        for o in (o1, o2):
            assert np.array_equal(np.sort(o), np.arange(n))
        assert np.array_equal(src.order(3, 7, False), np.arange(n))


def test_planned_batches_cover_epoch(synth_small: Path) -> None:
    """The trainer's batches: plan_batches over one epoch's order, each gathered with get."""
    from amc_tui.train.feed import plan_batches

    with load_dataset(DataConfig(path=str(synth_small))) as ds:
        src = ds.val
        order = src.order(3, 1, True)
        got = [src.get(idx) for idx in plan_batches(order, 50, drop_last=False)]
        sizes = [len(b[0]) for b in got]
        assert sum(sizes) == len(src) and all(s == 50 for s in sizes[:-1])
        assert len(src) % 50 and sizes[-1] == len(src) % 50  # the partial batch is kept
        dropped = plan_batches(order, 50, drop_last=True)
        assert len(dropped) == len(src) // 50 and all(len(b) == 50 for b in dropped)
        assert len(plan_batches(order, 50, drop_last=True, limit=2)) == 2
        iq, mod, snr = src.get(order[:50])
        np.testing.assert_array_equal(got[0][0], iq)
        np.testing.assert_array_equal(got[0][1], mod)
        np.testing.assert_array_equal(got[0][2], snr)


def test_auto_mode_follows_budget(files: dict[str, Path]) -> None:
    with load_dataset(cfg(files["contiguous"])) as ds:
        assert ds.mode == "memory"
    with load_dataset(cfg(files["contiguous"]), ram_budget=0) as ds:
        assert ds.mode == "memmap"
    with load_dataset(cfg(files["compressed"]), ram_budget=0) as ds:
        assert ds.mode == "blocks"
    with load_dataset(cfg(files["contiguous"], in_memory=False)) as ds:
        assert ds.mode == "memmap"
    with load_dataset(cfg(files["contiguous"], in_memory=True), ram_budget=0) as ds:
        assert ds.mode == "memory"


def test_frames_per_cell_and_info(files: dict[str, Path]) -> None:
    with load_dataset(cfg(files["contiguous"], frames_per_cell=4, split=[0.5, 0.25, 0.25])) as ds:
        info = ds.info()
        assert info["n_train"] + info["n_val"] + info["n_test"] == 4 * 6 * 4
        assert (info["n_train"], info["n_val"], info["n_test"]) == (48, 24, 24)
        assert info["n_frames"] == 4 * 6 * 12


def test_bad_selection_errors(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no frames for .*QPSK@12dB"):
        load_dataset(cfg(files["contiguous"], snr_max=12))
    with pytest.raises(DataError, match="unknown class name"):
        load_dataset(cfg(files["contiguous"], classes=["QPSKK"]))
    with pytest.raises(DataError, match="amc-tui data synth"):
        load_dataset(cfg(tmp_path / "absent.h5"))


_INHERITED = None


def _inherited_sum(pos: list[int]) -> float:
    return float(_INHERITED.get(np.array(pos))[0].sum())


def _store_sum(src, pos: list[int]) -> float:  # noqa: ANN001
    return float(src.get(np.array(pos))[0].sum())


@pytest.mark.parametrize("mode", ["blocks", "memmap"])
def test_store_in_worker_processes(files: dict[str, Path], mode: str) -> None:
    """A source inherited by a forked worker, or pickled to one, reads the same frames
    (the h5py handle is reopened in the child)."""
    global _INHERITED
    path = files["chunked" if mode == "blocks" else "contiguous"]
    with load_dataset(cfg(path), mode=mode) as ds:
        pos = [3, 1, 2, 40]
        expected = float(ds.train.get(np.array(pos))[0].sum())
        _INHERITED = ds.train
        try:
            with multiprocessing.get_context("fork").Pool(1) as pool:
                assert pool.apply(_inherited_sum, (pos,)) == expected
                assert pool.apply(_store_sum, (ds.train, pos)) == expected
        finally:
            _INHERITED = None
        assert float(ds.train.get(np.array(pos))[0].sum()) == expected


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_modes_agree_on_converted_dtypes(tmp_path: Path, dtype: type) -> None:
    """float16/float64 X: memmap, h5py slabs and RAM copies all give the same float32."""
    import h5py

    src = tmp_path / "s.h5"
    synthesize(src, classes=["BPSK", "QPSK"], frames_per_cell=10, snr_min=0, snr_max=2)
    with h5py.File(src, "r") as f:
        x, y, z = f["X"][...], f["Y"][...], f["Z"][...]
    p = tmp_path / "conv.h5"
    with h5py.File(p, "w") as f:
        f["X"], f["Y"], f["Z"] = x.astype(dtype), y, z
    c = DataConfig(path=str(p), classes=["BPSK", "QPSK"], snr_min=0, snr_max=2)
    got = []
    for mode in ("memory", "memmap", "blocks"):
        with load_dataset(c, mode=mode) as ds:
            assert any("converted to float32" in n for n in ds.notes)
            got.append(ds.train.get(np.arange(len(ds.train)))[0])
            rows = ds.train.rows
    for g in got:
        np.testing.assert_array_equal(g, x.astype(dtype).astype(np.float32)[rows])
