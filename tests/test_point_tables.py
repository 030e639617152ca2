"""sweeps/point_tables.py over a point of two real tiny runs (different seeds): each table's
mean and CI recomputed by hand from the runs' CSV files, and `group show`'s block."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import pytest
from scipy import stats as st
from train_fixtures import make_data, make_run, run_trainer

from amc_tui.run import tables
from amc_tui.sweeps import point_tables as pt
from amc_tui.sweeps.stats import member_from_run


@pytest.fixture(scope="module")
def point_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    ws = tmp_path_factory.mktemp("point_ws")
    data = make_data(ws / "data" / "tiny.h5")
    runs = []
    for seed in (0, 1):
        run = make_run(ws, f"pt-{seed}", data)
        text = run.config.read_text().replace("seed = 0", f"seed = {seed}")
        run.config.write_text(text)
        assert run_trainer(run) == 0
        runs.append(run.path)
    return runs


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _ci(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, st.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))


def test_band_accuracy_knees_and_pairs_by_hand(point_runs: list[Path]) -> None:
    members = [member_from_run(p, "p0") for p in point_runs]
    assert all(m.usable and m.export_dir is not None for m in members)
    got = pt.point_tables("p0", members)
    assert got.n == 2
    for metric in ("acc_mod", "acc_snr"):
        per_run = []
        for p in point_runs:
            k: dict[int, int] = defaultdict(int)
            n: dict[int, int] = defaultdict(int)
            for r in _rows(p / "export" / "final" / "per_cell.csv"):
                b = 0 if int(r["snr_db"]) < 0 else 1 if int(r["snr_db"]) < 10 else 2
                k[b] += round(float(r[metric]) * int(r["n"]))
                n[b] += int(r["n"])
            per_run.append({b: k[b] / n[b] for b in n})
        for b in (1, 2):  # the tiny grid is 0..20 dB: no band below 0 dB
            mean, half = _ci([r[b] for r in per_run])
            stat = got.bands[metric, b]
            assert stat.mean == pytest.approx(mean) and stat.half == pytest.approx(half)
        assert (metric, 0) not in got.bands
    # knees of the overall modulation accuracy curve, by hand
    for level in tables.KNEE_LEVELS:
        at = []
        for p in point_runs:
            k2: dict[int, int] = defaultdict(int)
            n2: dict[int, int] = defaultdict(int)
            for r in _rows(p / "export" / "final" / "per_cell.csv"):
                k2[int(r["snr_db"])] += round(float(r["acc_mod"]) * int(r["n"]))
                n2[int(r["snr_db"])] += int(r["n"])
            curve = sorted((s, k2[s] / n2[s]) for s in n2)
            ok = [s for s, _ in curve if all(a >= level for t, a in curve if t >= s)]
            at.append(min(ok) if ok else None)
        stat, reached = got.knees[level]
        assert reached == sum(a is not None for a in at)
        if reached:
            assert stat.mean == pytest.approx(sum(a for a in at if a is not None) / reached)
    # each pair's share in each run, by hand from the long-form confusion
    assert got.pairs
    for b, true, pred, stat in got.pairs:
        shares = []
        for p, m in zip(point_runs, members, strict=True):
            floor = tables.noise_floor(m.per_cell, "acc_mod").at_chance
            rows = [r for r in _rows(p / "export" / "final" / "confusion_mod_by_snr.csv")
                    if int(r["snr_db"]) not in floor and tables.band_of(int(r["snr_db"])) == b]  # fmt: skip
            n_true = sum(int(r["count"]) for r in rows if r["true"] == true)
            count = sum(int(r["count"]) for r in rows if (r["true"], r["pred"]) == (true, pred))
            if n_true:
                shares.append(count / n_true)
        assert stat.n == len(shares) and stat.mean == pytest.approx(sum(shares) / len(shares))
    text = "\n".join(pt.text_lines([got]))
    assert "accuracy per SNR band" in text and "reliable from" in text
    b, true, pred, stat = got.pairs[0]
    assert f"{true} -> {pred}" in text


def test_group_entry_sections(point_runs: list[Path]) -> None:
    from amc_tui.runlog.group_entry import _point_tables

    members = [member_from_run(p, "p0") for p in point_runs]
    lines = _point_tables([("p0", members), ("p1", [])])
    text = "\n".join(lines)
    assert "**Accuracy per SNR band** (mean ± 95 % CI half-width" in text
    assert "**Reliable from (SNR), overall modulation accuracy**" in text
    got = pt.point_tables("p0", members)
    row = next(ln for ln in lines if ln.startswith("| p0 | 2 |"))
    assert pt._pm(got.bands["acc_mod", 2]) in row
    assert any(ln.startswith("| p1 | 0 | - |") for ln in lines)  # no runs: no data, never 0
    assert "| p1 | - | - |" in text
