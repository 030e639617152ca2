"""Device metric accumulation against a direct numpy computation, F1, export files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from amc_tui.contract import EXPORT_FILES, PER_CELL_COLUMNS
from amc_tui.train.export import write_export
from amc_tui.train.metrics import Accumulator, f1_scores

torch.set_num_threads(1)
CLASSES = ["BPSK", "QPSK", "8PSK"]
SNRS = [0, 2, 4, 6]


def random_batches(seed: int = 0, n_batches: int = 5, b: int = 17):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        mod = torch.randint(0, 3, (b,), generator=g)
        snr = torch.randint(0, 4, (b,), generator=g)
        ml = torch.randn(b, 3, generator=g)
        sl = torch.randn(b, 4, generator=g)
        ml[:5, :] = 0
        ml[torch.arange(5), mod[:5]] = 9  # some right answers
        yield ml, sl, mod, snr


def test_accumulator_matches_numpy_and_resumes() -> None:
    acc = Accumulator(3, 4)
    half = Accumulator(3, 4)
    all_ml, all_sl, all_mod, all_snr = [], [], [], []
    for k, (ml, sl, mod, snr) in enumerate(random_batches()):
        acc.update(ml, sl, mod, snr, torch.tensor(1.0), torch.tensor(2.0))
        if k == 2:  # a mid-epoch checkpoint and a fresh accumulator restored from it
            half.load(acc.state())
        elif k > 2:
            half.update(ml, sl, mod, snr, torch.tensor(1.0), torch.tensor(2.0))
        all_ml.append(ml), all_sl.append(sl), all_mod.append(mod), all_snr.append(snr)
    pm = torch.cat(all_ml).argmax(1).numpy()
    ps = torch.cat(all_sl).argmax(1).numpy()
    tm, ts = torch.cat(all_mod).numpy(), torch.cat(all_snr).numpy()
    m = acc.summary().metrics()
    assert m["acc_mod"] == pytest.approx(np.mean(pm == tm))
    assert m["acc_snr"] == pytest.approx(np.mean(ps == ts))
    assert m["acc_combined"] == pytest.approx(np.mean((pm == tm) & (ps == ts)))
    assert m["snr_mae_db"] == pytest.approx(2.0 * np.mean(np.abs(ps - ts)))
    assert m["snr_within_1"] == pytest.approx(np.mean(np.abs(ps - ts) <= 1))
    assert m["loss"] == pytest.approx(3.0) and m["loss_mod"] == pytest.approx(1.0)
    assert half.summary().metrics() == pytest.approx(m)
    s = acc.summary()
    assert s.conf_mod.sum() == len(tm) and s.conf_snr.sum() == len(tm)
    assert np.array_equal(
        s.conf_mod, np.histogram2d(tm, pm, bins=[3, 3], range=[[0, 3], [0, 3]])[0]
    )
    # the per-SNR modulation confusion, counted by hand, sums to conf_mod
    assert s.conf_mod_snr.shape == (4, 3, 3)
    for j in range(4):
        at = ts == j
        hand = np.histogram2d(tm[at], pm[at], bins=[3, 3], range=[[0, 3], [0, 3]])[0]
        assert np.array_equal(s.conf_mod_snr[j], hand)
    assert np.array_equal(s.conf_mod_snr.sum(axis=0), s.conf_mod)
    assert np.array_equal(half.summary().conf_mod_snr, s.conf_mod_snr)


def test_f1_scores() -> None:
    conf = np.array([[5, 1], [2, 0]])
    f1 = f1_scores(conf)
    assert f1[0] == pytest.approx(2 * 5 / (2 * 5 + 1 + 2))
    assert f1[1] == 0.0  # no true positives, defined as 0


def test_export_files_are_consistent(tmp_path) -> None:
    acc = Accumulator(3, 4)
    for ml, sl, mod, snr in random_batches(1):
        acc.update(ml, sl, mod, snr, torch.tensor(0.5), torch.tensor(1.5))
    s = acc.summary()
    fields = {"epoch": np.int64(3), "val": s.metrics(), "is_best": np.bool_(True)}
    write_export(tmp_path, s, CLASSES, SNRS, fields)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPORT_FILES)
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["epoch"] == 3 and doc["is_best"] is True and doc["snrs"] == SNRS
    assert set(doc["f1_mod"]) == set(CLASSES)
    with open(tmp_path / "per_cell.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header) == PER_CELL_COLUMNS
    pc = pd.read_csv(tmp_path / "per_cell.csv")
    assert len(pc) == len(CLASSES) * len(SNRS)
    n = pc.n.sum()
    assert n == s.n
    for key in ("acc_mod", "acc_snr", "acc_combined", "snr_mae_db"):
        assert (pc[key] * pc.n).sum() / n == pytest.approx(doc["val"][key])
    conf = pd.read_csv(tmp_path / "confusion_mod.csv", index_col=0)
    assert list(conf.index) == CLASSES and list(conf.columns) == CLASSES
    assert conf.values.sum() == n
    conf_snr = pd.read_csv(tmp_path / "confusion_snr.csv", index_col=0)
    assert list(conf_snr.columns) == [str(x) for x in SNRS] and conf_snr.values.sum() == n
    long = pd.read_csv(tmp_path / "confusion_mod_by_snr.csv")
    assert list(long.columns) == ["snr_db", "true", "pred", "count"] and (long["count"] > 0).all()
    assert long["count"].sum() == n and set(long.snr_db) <= set(SNRS)
    back = long.groupby(["true", "pred"])["count"].sum().unstack(fill_value=0)
    for t in back.index:
        for p in back.columns:
            assert back.loc[t, p] == conf.loc[t, p]
    f1 = pd.read_csv(tmp_path / "f1_mod.csv")
    assert list(f1.modulation) == CLASSES
