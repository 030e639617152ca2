"""run/tables.py on a real export of a real tiny run, checked against hand computations from
its CSV files (csv module only), and on hand-made cells for the rules at their edges."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import binomtest
from train_fixtures import make_data, make_run, run_trainer

from amc_tui.cli.main import main
from amc_tui.run import tables
from amc_tui.run.analysis import read_per_cell
from amc_tui.runlog.entry import read_source, render_body


@pytest.fixture(scope="module")
def final_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test-split export of a real 2-epoch tiny run (4 classes, 0..20 dB)."""
    ws = tmp_path_factory.mktemp("tables_ws")
    run = make_run(ws, "tables-1", make_data(ws / "data" / "tiny.h5"))
    assert run_trainer(run) == 0
    return run.path / "export" / "final"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_wilson_matches_scipy() -> None:
    for k, n in ((0, 4), (3, 3), (7, 9), (41, 410), (205, 410)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        lo, hi = tables.wilson(k, n)
        assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert all(math.isnan(v) for v in tables.wilson(0, 0))


def test_confused_pairs_match_a_hand_count(final_export: Path) -> None:
    long = _rows(final_export / "confusion_mod_by_snr.csv")
    # the long form agrees with the whole-split confusion matrix
    whole = _rows(final_export / "confusion_mod.csv")
    total: dict[tuple[str, str], int] = defaultdict(int)
    for r in long:
        total[r["true"], r["pred"]] += int(r["count"])
    for row in whole:
        t = row.pop("true\\pred")
        for p, c in row.items():
            assert total.get((t, p), 0) == int(c)

    per_cell = read_per_cell(final_export)
    floor = tables.noise_floor(per_cell, "acc_mod")
    bands = tables.confusions(tables.read_confusion_by_snr(final_export), floor, top=100)
    assert bands is not None and bands
    # by hand: per band (< 0, 0..9, >= 10 dB) without the floor's SNRs
    pairs: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    true_n: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in long:
        snr = int(r["snr_db"])
        if snr in floor.at_chance:
            continue
        b = 0 if snr < 0 else 1 if snr < 10 else 2
        true_n[b][r["true"]] += int(r["count"])
        if r["true"] != r["pred"]:
            pairs[b][r["true"], r["pred"]] += int(r["count"])
    assert len(bands) == len(true_n)
    for band, b in zip(bands, sorted(true_n), strict=True):
        got = {(p.true, p.pred): (p.count, p.n_true) for p in band.pairs}
        want = {k: (c, true_n[b][k[0]]) for k, c in pairs[b].items()}
        assert got == want
        counts = [p.count for p in band.pairs]
        assert counts == sorted(counts, reverse=True)
        assert all(p.share == p.count / p.n_true for p in band.pairs)


def test_knees_match_a_hand_reading(final_export: Path) -> None:
    cells: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in _rows(final_export / "per_cell.csv"):
        if int(r["n"]) > 0:
            cells[r["modulation"]].append((int(r["snr_db"]), float(r["acc_mod"])))
    got = {k.modulation: k for k in tables.knees(read_per_cell(final_export))}
    assert set(got) == set(cells)
    for mod, row in cells.items():
        row.sort()
        for level in tables.KNEE_LEVELS:
            # the lowest SNR s with every SNR >= s at or above the level
            ok = [s for s, _ in row if all(a >= level for t, a in row if t >= s)]
            assert got[mod].at[level] == (min(ok) if ok else None)


def test_hardest_never_lists_a_small_cell(final_export: Path) -> None:
    per_cell = read_per_cell(final_export)
    n_cell = set(per_cell["n"])
    assert max(n_cell) < 10  # the tiny test split: a few frames per cell
    for min_n in (1, 6, 12, 30):
        h = tables.hardest(per_cell, "acc_combined", n=50, min_n=min_n)
        assert all(c.n >= min_n for c in h.cells)
        assert all(c.snr_lo not in h.floor.at_chance for c in h.cells)
        if min_n > max(n_cell):
            assert h.width > 1  # small cells pooled into SNR bands
        # each band's n and accuracy, summed by hand from the CSV
        for c in h.cells:
            rows = [
                r
                for r in _rows(final_export / "per_cell.csv")
                if r["modulation"] == c.modulation and c.snr_lo <= int(r["snr_db"]) <= c.snr_hi
            ]
            n = sum(int(r["n"]) for r in rows)
            k = sum(round(float(r["acc_combined"]) * int(r["n"])) for r in rows)
            assert (c.n, c.k) == (n, k)
        his = [c.hi for c in h.cells]
        assert his == sorted(his)


def _cells(acc: dict[int, float], n: int, mods: tuple[str, ...] = ("BPSK", "QPSK")) -> pd.DataFrame:
    rows = [
        {"modulation": m, "snr_db": s, "n": n, "acc_mod": a, "acc_snr": a, "acc_combined": a,
         "snr_mae_db": 0.0}
        for m in mods
        for s, a in acc.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_significant_but_negligible_edge_is_still_the_floor() -> None:
    # 24 classes, 9,840 frames at the SNR: 5.5 % is significantly above chance (4.2 %), yet
    # far from working: at the floor; 20 % clears the bar (4.2 % + 9.6 % = 13.8 %)
    mods = tuple(f"M{i}" for i in range(24))
    per_cell = _cells({-16: 0.055, -8: 0.20}, 410, mods=mods)
    lv = {x.snr_db: x for x in tables.snr_levels(per_cell, "acc_mod")}
    assert lv[-16].lo > 1 / 24 and not lv[-16].above and lv[-8].above
    assert tables.noise_floor(per_cell).below == -16


def test_noise_floor_is_named_not_listed() -> None:
    # 410 frames per cell as a 10 % test split of the real file; 2 classes: chance 50 %
    acc = {-20: 0.5, -18: 0.52, -16: 0.49, -14: 0.6, -12: 0.95, -10: 0.3}
    per_cell = _cells(acc, 410)
    floor = tables.noise_floor(per_cell, "acc_mod")
    assert floor.at_chance == [-20, -18, -16, -10] and floor.below == -16
    text = floor.text()
    assert "at and below -16 dB the modulation head is at the noise floor" in text
    assert "also at -10 dB" in text and "under 55.0%: chance 50.0%" in text
    # the bar is chance plus a tenth of the way to 100 %: 60 % of 820 frames clears 55 %
    lv = {x.snr_db: x for x in tables.snr_levels(per_cell, "acc_mod")}
    assert lv[-14].lo > 0.55 > lv[-18].lo and lv[-14].above and not lv[-18].above
    h = tables.hardest(per_cell, "acc_mod", min_n=30)
    assert {c.snr_lo for c in h.cells} == {-14, -12} and h.width == 1
    assert h.cells[0].snr_lo == -14  # 60 % is surely below 95 %
    assert "at and below -16 dB" in h.text()


def test_a_small_split_pools_and_never_ranks_under_min_n() -> None:
    per_cell = _cells({s: 0.9 for s in range(0, 20, 2)}, 4)
    h = tables.hardest(per_cell, "acc_mod", min_n=30)
    assert h.width == 8 and all(c.n >= 30 for c in h.cells)
    assert [(c.snr_lo, c.snr_hi, c.n) for c in h.cells] == [(0, 14, 32)] * 2
    assert h.too_small == 2  # the two 16..18 dB bands hold 8 frames each


def test_an_old_export_says_so(tmp_path: Path) -> None:
    assert tables.read_confusion_by_snr(tmp_path) is None
    assert tables.confusions(None) is None


def test_runlog_sections_on_a_real_export(final_export: Path) -> None:
    body = render_body(read_source(final_export.parent.parent))
    for title in ("### Hardest Cells (test, final)", "### Confusions (test, final)",
                  "### Reliable From (SNR) (test, final)"):  # fmt: skip
        assert title in body
    assert "Wilson 95% upper bound" in body and "n >= 30" in body
    t = tables.export_tables(final_export)
    for knee in t.knees:
        assert f"| {knee.modulation} | {tables.knee_text(knee, 0.5)} |" in body


def test_show_prints_the_tables(
    final_export: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    run_dir = final_export.parent.parent
    assert main(["--workspace", str(run_dir.parent.parent), "show", run_dir.name]) == 0
    out = capsys.readouterr().out
    assert "hardest cells (test, final): Ranked by the Wilson 95% upper bound" in out
    assert "confused pairs (test, final)" in out and "reliable from (test, final)" in out
    t = tables.export_tables(final_export)
    assert t.confusions and t.confusions[0].pairs
    p = t.confusions[0].pairs[0]
    assert f"{p.true} -> {p.pred}" in out and f"{p.count} / {p.n_true}" in out


def test_cells_without_frames_are_no_data() -> None:
    per_cell = _cells({0: 0.6, 2: 0.7}, 410, mods=("BPSK", "QPSK", "8PSK"))
    empty = per_cell["modulation"] == "8PSK"
    per_cell.loc[empty, "n"] = 0
    per_cell.loc[empty, ["acc_mod", "acc_snr", "acc_combined"]] = float("nan")
    assert tables.chance(per_cell, "acc_mod") == 0.5  # 8PSK has no frames: not a class
    h = tables.hardest(per_cell, "acc_mod", n=50)
    assert h.cells and all(c.modulation != "8PSK" for c in h.cells)
    assert [k.modulation for k in tables.knees(per_cell)] == ["BPSK", "QPSK"]


def test_show_json_holds_the_tables(
    final_export: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    run_dir = final_export.parent.parent
    assert main(["--workspace", str(run_dir.parent.parent), "show", run_dir.name, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["tables"]
    t = tables.export_tables(final_export)
    assert got["export"] == "final" and got["hardest"]["min_n"] == tables.MIN_N
    assert got["noise_floor"]["at_floor_db"] == t.mod_floor.at_chance
    assert [(p["true"], p["pred"], p["count"]) for b in got["confusions"] for p in b["pairs"]] == [
        (p.true, p.pred, p.count) for b in t.confusions or [] for p in b.pairs
    ]
    assert [k["from_50_db"] for k in got["knees"]] == [k.at[0.5] for k in t.knees]
