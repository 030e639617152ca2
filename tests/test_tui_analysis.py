"""Analysis, Compare, RUNLOG and GPUs screens on real run directories."""

from __future__ import annotations

import csv
import os
import re

import pytest
from textual.widgets import DataTable, OptionList, Select, Static, TabbedContent
from tui_fixtures import (
    FakeNVML,
    demo_workspace,
    make_app,
    runs_loaded,
    sampler,
    screen_ready,
    wait_for,
)

from amc_tui.config import diff_configs
from amc_tui.tui.screens.analysis import AnalysisScreen
from amc_tui.tui.screens.compare import CompareScreen
from amc_tui.tui.screens.gpus import GpusScreen
from amc_tui.tui.screens.runlog import RunlogScreen
from amc_tui.tui.widgets.gpu_panel import GpuCard
from amc_tui.tui.widgets.heatmap import Heatmap

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_workspace(tmp_path_factory.mktemp("an") / "ws")


def per_cell(path) -> dict[tuple[str, int], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["modulation"], int(r["snr_db"])): r for r in csv.DictReader(f)}


def check_heatmap_equals_csv(heat: Heatmap, csv_path, metric: str) -> int:
    cells = per_cell(csv_path)
    checked = 0
    for i, mod in enumerate(heat.row_labels):
        for j, snr in enumerate(heat.col_labels):
            row = cells.get((mod, int(snr)))
            if row is None:
                assert heat.values[i][j] is None
                continue
            assert heat.values[i][j] == pytest.approx(float(row[metric])), (mod, snr)
            checked += 1
    assert checked == len(cells)
    return checked


async def test_heatmap_equals_per_cell_csv_then_confusion_f1_trajectory(demo) -> None:
    run = demo.runs / "amber-wave-1"
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_analysis(run)
        screen = await screen_ready(pilot, AnalysisScreen)
        heat = screen.query_one("#an-heat", Heatmap)
        await wait_for(pilot, lambda: screen.data is not None and screen.export == "final")
        check_heatmap_equals_csv(heat, run / "export/final/per_cell.csv", "acc_combined")
        for metric in ("acc_mod", "acc_snr", "snr_mae_db"):
            await pilot.press("m")
            await wait_for(pilot, lambda m=metric: screen.data.metric == m)
            check_heatmap_equals_csv(heat, run / "export/final/per_cell.csv", metric)
        # the exact value and n under the cursor
        await pilot.press("m")  # back to acc_combined
        await wait_for(pilot, lambda: screen.data.metric == "acc_combined")
        heat.focus()
        await pilot.press("down", "right", "right")
        await pilot.pause()
        mod, snr = heat.row_labels[1], int(heat.col_labels[2])
        row = per_cell(run / "export/final/per_cell.csv")[(mod, snr)]
        info = str(screen.query_one("#an-info", Static).render())
        assert f"{mod} @ {snr} dB" in info
        assert f"{100 * float(row['acc_combined']):.2f}%" in info and f"n = {row['n']}" in info
        # another export
        screen.query_one("#an-export", Select).value = "epoch_002"
        await wait_for(pilot, lambda: screen.data.name == "epoch_002")
        check_heatmap_equals_csv(heat, run / "export/epoch_002/per_cell.csv", "acc_combined")
        hard = str(screen.query_one("#an-hard", Static).render())
        assert "hardest cells" in hard and "dB" in hard

        # confusion matrices, F1, trajectory
        cm = screen.query_one("#an-cm-mod", Heatmap)
        assert cm.row_labels == ["4ASK", "8ASK", "BPSK", "QPSK"]
        for row in cm.values:  # normalised per true class
            assert sum(v for v in row if v is not None) == pytest.approx(1.0)
        snr = screen.query_one("#an-cm-snr", Heatmap)
        assert len(snr.row_labels) == 11
        await pilot.press("t")
        assert screen.query_one(TabbedContent).active == "tab-snr"
        await pilot.press("t")
        assert screen.query_one(TabbedContent).active == "tab-confusion"
        f1 = screen.query_one("#an-f1", DataTable)
        assert f1.row_count == 11  # max(4 modulations, 11 SNRs)
        snrs = [str(f1.get_row_at(i)[2]) for i in range(f1.row_count)]
        assert snrs == [str(s) for s in range(-10, 11, 2)]  # dB as written, not "-10.0"
        traj = screen.query_one("#an-traj", DataTable)
        assert traj.row_count == 4  # one row per epoch event


def _value(text: str) -> float:
    """A rendered cell back to a number: `33.33%` -> 0.3333, `3.984` -> 3.984."""
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


async def test_trajectory_at_80x24_shows_every_validation_value_whole(demo) -> None:
    """The validation columns come first under short headers: at 80 columns every one of
    them is on screen, each cell equal to the epoch event (to its shown digits); the
    training columns follow by scrolling right, the epoch column staying."""
    import json

    run = demo.runs / "amber-wave-1"
    events = [json.loads(ln) for ln in (run / "events.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["kind"] == "epoch"]
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _analysis(pilot, demo, "amber-wave-1")
        while screen.query_one(TabbedContent).active != "tab-traj":
            await pilot.press("t")
        await pilot.pause()
        lines = screen_lines(app)
        heads = [ln for ln in lines if ln.split()[:3] == ["ep", "val", "comb"]]
        assert heads, "\n".join(lines)  # validation first, beside the epoch
        head = heads[0]
        keys = ["acc_combined", "acc_mod", "acc_snr", "loss", "snr_mae_db", "snr_within_1"]
        for h in ("val comb", "val mod", "val SNR", "val loss", "val MAE dB", "val ±1 dB"):
            assert h in head, (h, head)
        best = max(e["epoch"] for e in epochs if e["is_best"])
        for ev in epochs:
            (row,) = [ln.split() for ln in lines if ln.split()[:1] == [str(ev["epoch"])]]
            if ev["epoch"] == best:
                assert row[1] == "★"
                row.pop(1)
            for key, cell in zip(keys, row[1:7], strict=True):
                decimals = len(cell.rstrip("%").partition(".")[2])
                half = 0.5 * 10**-decimals / (100 if cell.endswith("%") else 1)  # its rounding
                assert abs(_value(cell) - ev["val"][key]) <= half + 1e-12, (key, cell)
        table = screen.query_one("#an-traj", DataTable)
        assert table.fixed_columns == 1
        for _ in range(40):
            await pilot.press("right")
        await pilot.pause()
        lines = screen_lines(app)
        assert any(ln.split()[:1] == ["ep"] and "tr loss" in ln for ln in lines)


async def test_analysis_names_its_run_and_calls_final_the_test_split_of_the_best_epoch(
    demo,
) -> None:
    import json

    run = demo.runs / "amber-wave-1"
    best = json.loads((run / "export/final/summary.json").read_text())["epoch"]
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _analysis(pilot, demo, "amber-wave-1")
        lines = screen_lines(app)
        assert "amber-wave-1" in lines[0]  # the header
        assert f"test (best epoch {best})" in "\n".join(lines[1:5])  # the export picker
        info = str(screen.query_one("#an-info", Static).render())
        assert info.startswith(f"test (best epoch {best}) · ")
        assert not any("final" in ln for ln in lines)
        await pilot.press("e")  # the next export wraps round to the first epoch
        await wait_for(pilot, lambda: screen.data.name == "epoch_001")
        await wait_for(pilot, lambda: str(screen.query_one("#an-info", Static).render())
                       .startswith("val (epoch 1) · "))  # fmt: skip


async def test_run_without_exports_says_so(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_analysis(demo.runs / "eager-fog-5")
        screen = await screen_ready(pilot, AnalysisScreen)
        info = screen.query_one("#an-info", Static)
        await wait_for(pilot, lambda: "no exports yet" in str(info.render()))


async def test_compare_lists_exactly_the_keys_that_differ(demo) -> None:
    a, b = demo.runs / "amber-wave-1", demo.runs / "bold-river-2"
    import tomllib

    expected = {
        k
        for k, _, _ in diff_configs(
            tomllib.loads((a / "config.toml").read_text()),
            tomllib.loads((b / "config.toml").read_text()),
        )
        if k != "name"
    }
    assert expected == {"train.lr", "model.dropout"}
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_compare(a, b)
        screen = await screen_ready(pilot, CompareScreen)
        await wait_for(pilot, lambda: screen.data is not None)
        table = screen.query_one("#cmp-config-table", DataTable)
        keys = {str(table.get_row_at(i)[0]) for i in range(table.row_count)}
        assert keys == expected
        lr = table.get_row("train.lr")
        assert lr[1:] == ["0.0001", "0.0003"]
        metrics = screen.query_one("#cmp-metrics-table", DataTable)
        assert metrics.row_count == 12  # 6 metrics x (val, train)
        heat = screen.query_one("#cmp-heat", Heatmap)
        assert heat.row_labels == ["4ASK", "8ASK", "BPSK", "QPSK"]
        assert all(v is not None for row in heat.values for v in row)
        # the combined accuracy chart dashes the chance the two runs share (4 x 11 cells)
        from amc_tui.tui.widgets.curves import Curves

        acc = screen.query_one("#cmp-plot-acc", Curves)
        assert acc.chances == (("chance 2.3%", pytest.approx(1 / 44)),)
        await pilot.press("x")  # swap: A and B trade places, the diff keeps its keys
        await wait_for(
            pilot, lambda: table.row_count == 2 and table.get_row("train.lr")[1] == "0.0003"
        )


async def test_runlog_jumps_to_an_entry(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_runlog()
        screen = await screen_ready(pilot, RunlogScreen)
        index = screen.query_one("#rl-index", OptionList)
        await wait_for(pilot, lambda: index.option_count == 5)
        assert not index.display  # 80 columns: the text has the room until `j`
        scroll = screen.query_one("#rl-scroll")
        assert scroll.scroll_y == 0
        await pilot.press("j")
        assert index.display and index.has_focus
        await pilot.press("end", "enter")  # the last entry
        await wait_for(pilot, lambda: screen.current == "f6f6f6f6")
        assert not index.display and scroll.has_focus  # back to the text
        target = screen.query_one("#rl-f6f6f6f6")
        await wait_for(pilot, lambda: scroll.scroll_y > 0)
        assert abs(scroll.scroll_y - target.virtual_region.y) <= 1
        await pilot.press("escape")
        # opened from a run: lands on its entry
        app.open_runlog("c3c3c3c3")
        screen = await screen_ready(pilot, RunlogScreen)
        await wait_for(pilot, lambda: screen.current == "c3c3c3c3")


def _md_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of a file as rows of cells (the rule lines left out)."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|([-:]+\|)+", line.replace(" ", "")):
                rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _rendered(screen) -> list[str]:
    """Every line the RUNLOG view holds, scrolled into view or not."""
    from textual.geometry import Region

    out = []
    for block in screen.query_one("#rl-scroll").children:
        out += [s.text for s in block.render_lines(Region(0, 0, *block.size))]
    return out


@pytest.mark.parametrize("index", [False, True], ids=["text", "with-index"])
async def test_runlog_tables_at_80x24_keep_every_value_whole(demo, index) -> None:
    """Each table of RUNLOG.md is drawn with every cell as written (header and values, none
    cut or wrapped), the index shown or not; what is wider than the view scrolls sideways."""
    tables = _md_tables(demo.runlog.read_text())
    assert len(tables) >= 6 and max(len(t[0]) for t in tables) >= 11  # the trajectories
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_runlog()
        screen = await screen_ready(pilot, RunlogScreen)
        await wait_for(pilot, lambda: screen.query_one("#rl-index", OptionList).option_count)
        if index:
            await pilot.press("i")
        await pilot.pause()
        lines = _rendered(screen)
        assert not [ln for ln in lines if "…" in ln]
        for table in tables:
            for row in table:
                pattern = r"\s+".join(re.escape(c) for c in row)
                assert any(re.search(pattern, ln) for ln in lines), row
        scroll = screen.query_one("#rl-scroll")
        assert scroll.max_scroll_x > 0  # a trajectory is wider than 80 columns
        from textual.geometry import Region

        wide = next(b for b in scroll.children
                    if any("w SNR" in s.text for s in b.render_lines(Region(0, 0, *b.size))))  # fmt: skip
        scroll.scroll_to_widget(wide, top=True, animate=False)
        scroll.focus()
        while scroll.scroll_x < scroll.max_scroll_x:
            await pilot.press("right")
            await pilot.pause()
        assert any("w SNR" in ln for ln in screen_lines(app))  # its last column, on screen


async def test_runlog_missing_file(tmp_path) -> None:
    ws = demo_workspace(tmp_path / "ws")
    ws.runlog.unlink()
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_runlog()
        screen = await screen_ready(pilot, RunlogScreen)
        head = screen.query_one("#rl-head", Static)
        await wait_for(pilot, lambda: "no RUNLOG.md yet" in str(head.render()))


async def test_gpus_screen_without_and_with_gpus(demo) -> None:
    app = make_app(demo)  # fake NVML whose init fails: no driver
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        await wait_for(pilot, lambda: bool(screen.query("#gpu-none")))
        assert "no NVIDIA GPU" in str(screen.query_one("#gpu-none", Static).render())
        assert not screen.query(GpuCard)

    app = make_app(demo, gpu_sampler=sampler(FakeNVML(count=2, pids={1: [os.getpid()]})))
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        await wait_for(pilot, lambda: len(screen.query(GpuCard)) == 2)
        await wait_for(pilot, lambda: "fresh-dew-6" in str(
            screen.query_one("#gpu-card-1 .gpu-holder", Static).render()))  # fmt: skip
        assert "free" in str(screen.query_one("#gpu-card-0 .gpu-holder", Static).render())
        assert "47%" in str(screen.query_one("#gpu-card-1 #lbl-util").render())


# --------------------------------------------------------------------------- layout and numbers


def screen_lines(app) -> list[str]:
    """What the terminal shows, one string per line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def _tokens(lines: list[str]) -> set[str]:
    return {tok for line in lines for tok in line.split()}


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A workspace with a 17-modulation x 26-SNR run, a run whose BPSK cells have no frames,
    a run without validation data and a run that failed before its first epoch."""
    import pandas as pd
    from runs_fixtures import make_fake_run

    from amc_tui.data.classes import DIGITAL, snr_range

    ws = demo_workspace(tmp_path_factory.mktemp("big") / "ws")
    make_fake_run(ws, "big-grid-7", run_id="g7g7g7g7", seed=7, epochs=2,
                  classes=list(DIGITAL), snrs=snr_range(-20, 30))  # fmt: skip
    make_fake_run(ws, "big-twin-8", run_id="h8h8h8h8", seed=8, epochs=2,
                  classes=list(DIGITAL), snrs=snr_range(-20, 30))  # fmt: skip
    gap = make_fake_run(ws, "gap-cell-9", run_id="i9i9i9i9", seed=9, epochs=2)
    path = gap.final_export / "per_cell.csv"
    df = pd.read_csv(path)
    df.loc[df["modulation"] == "BPSK", ["n", "acc_mod", "acc_snr", "acc_combined",
                                        "snr_mae_db"]] = 0  # fmt: skip
    df.to_csv(path, index=False)
    conf = pd.read_csv(gap.final_export / "confusion_mod.csv", index_col=0)
    conf.loc["BPSK", :] = 0
    conf.loc[:, "BPSK"] = 0
    conf.to_csv(gap.final_export / "confusion_mod.csv")
    make_fake_run(ws, "early-fail-10", run_id="j0j0j0j0", seed=10, state="failed", epoch=0)
    # a pair whose cells alternate between no change and -100 points (the widest labels)
    for name, seed in (("pair-a-11", 11), ("pair-b-12", 12)):
        run = make_fake_run(ws, name, seed=seed, epochs=1, snrs=snr_range(-20, 30))
        path = run.final_export / "per_cell.csv"
        df = pd.read_csv(path)
        df["acc_combined"] = 1.0
        if name == "pair-b-12":
            df.loc[(df["snr_db"] // 2) % 2 == 0, "acc_combined"] = 0.0
        df.to_csv(path, index=False)
    return ws


async def _analysis(pilot, ws, name: str) -> AnalysisScreen:
    await runs_loaded(pilot)
    pilot.app.open_analysis(ws.runs / name)
    screen = await screen_ready(pilot, AnalysisScreen)
    await wait_for(pilot, lambda: screen.data is not None and screen.export == "final")
    await pilot.pause()
    return screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_tall_heatmap_scrolls_with_the_cursor_under_a_fixed_header(big, size) -> None:
    app = make_app(big)
    async with app.run_test(size=size) as pilot:
        screen = await _analysis(pilot, big, "big-grid-7")
        heat = screen.query_one("#an-heat", Heatmap)
        assert len(heat.row_labels) == 17 and len(heat.col_labels) == 26
        lines = screen_lines(app)
        # every SNR column is labelled, and the colours have a legend
        assert {str(s) for s in range(-20, 31, 2)} <= _tokens(lines)
        assert any("no data" in ln and "100%" in ln and "0%" in ln for ln in lines)
        for i in range(1, 17):
            await pilot.press("down")
            await pilot.pause()
            mod = heat.row_labels[i]
            lines = screen_lines(app)
            assert any(ln.split()[:1] == [mod] for ln in lines), (i, mod)
            assert {"-20", "30"} <= _tokens(lines)  # the header stayed
            assert f"{mod} @ -20 dB" in str(screen.query_one("#an-info", Static).render())
        await pilot.press("pageup")
        await pilot.pause()
        assert heat.cursor[0] < 16 and {"-20", "30"} <= _tokens(screen_lines(app))
        assert heat.region.bottom <= app.screen.region.bottom - 1  # above the footer


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_every_confusion_column_is_labelled(big, size) -> None:
    from amc_tui.data.classes import DIGITAL

    app = make_app(big)
    async with app.run_test(size=size) as pilot:
        screen = await _analysis(pilot, big, "big-grid-7")
        screen.query_one(TabbedContent).active = "tab-confusion"
        await pilot.pause()
        cm = screen.query_one("#an-cm-mod", Heatmap)
        assert cm.has_focus
        top = cm.region.y
        header = screen_lines(app)[top : top + cm.header_lines()]
        assert set(DIGITAL) <= _tokens(header)
        await pilot.press("end", "down")
        info = str(screen.query_one("#an-info", Static).render())
        assert f"true {cm.row_labels[1]} -> predicted {cm.col_labels[-1]}" in info


async def test_a_cell_without_frames_is_no_data(big) -> None:
    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _analysis(pilot, big, "gap-cell-9")
        heat = screen.query_one("#an-heat", Heatmap)
        row = heat.row_labels.index("BPSK")
        assert heat.values[row] == [None] * len(heat.col_labels)
        heat.cursor = (row, 3)
        await pilot.pause()
        info = str(screen.query_one("#an-info", Static).render())
        assert "no data" in info and "0.00%" not in info and "n = 0" in info
        assert "BPSK" not in str(screen.query_one("#an-hard", Static).render())
        f1 = screen.query_one("#an-f1", DataTable)
        rows = {str(f1.get_row_at(i)[0]): f1.get_row_at(i) for i in range(f1.row_count)}
        assert str(rows["BPSK"][1]) == "no data" and str(rows["QPSK"][1]) != "no data"


async def test_a_run_that_failed_before_its_first_epoch_says_why(big) -> None:
    app = make_app(big)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_analysis(big.runs / "early-fail-10")
        screen = await screen_ready(pilot, AnalysisScreen)
        info = screen.query_one("#an-info", Static)
        await wait_for(pilot, lambda: "failed before its first epoch" in str(info.render()))
        assert "ValueError: boom" in str(info.render())
        assert "no exports yet" not in str(info.render())


async def test_snr_curve_of_one_run_then_one_modulation(big) -> None:
    from amc_tui.run.analysis import read_per_cell, snr_curve
    from amc_tui.tui.widgets.curves import Curves

    app = make_app(big)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _analysis(pilot, big, "gap-cell-9")
        await pilot.press("t")
        assert screen.query_one(TabbedContent).active == "tab-snr"
        chart = screen.query_one("#an-snr", Curves)
        df = read_per_cell(big.runs / "gap-cell-9/export/final")
        snrs, values = snr_curve(df, "acc_combined")
        assert chart.series["all"] == (snrs, pytest.approx(values))
        assert any("%┤" in ln for ln in screen_lines(app))  # a percent axis
        await pilot.press("c")  # the first modulation in class order
        first = screen.data.mods[0]
        assert screen.curve_of == first and first in chart.series
        assert chart.series[first][1] == pytest.approx(snr_curve(df, "acc_combined", first)[1])
        await pilot.press("c", "c")  # BPSK has no frames: its curve has no points, not zeros
        assert screen.curve_of == "BPSK" and chart.series["BPSK"] == ([], [])


async def _mark(pilot, names: list[str]) -> None:
    """Mark runs on the Runs screen with its own key."""
    from amc_tui.tui.screens.runs import RunsScreen

    runs = pilot.app.screen
    assert isinstance(runs, RunsScreen)
    table = runs.query_one(DataTable)
    for name in names:
        key = str(runs.amc.ws.runs / name)
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("m")
    assert [os.path.basename(k) for k in runs.marked] == names


async def test_snr_curves_of_marked_runs_overlay_in_run_colours(big) -> None:
    from amc_tui.tui.widgets.curves import Curves

    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        await _mark(pilot, ["big-twin-8", "gap-cell-9"])
        screen = await _analysis(pilot, big, "big-grid-7")
        screen.query_one(TabbedContent).active = "tab-snr"
        chart = screen.query_one("#an-snr", Curves)
        await wait_for(pilot, lambda: len(chart.lines) == 3)
        colors = {ln.label: ln.color for ln in chart.lines}
        # mark order gives the colours; the unmarked run on screen comes last
        assert colors == {"big-twin-8": "cyan", "gap-cell-9": "orange", "big-grid-7": "green"}


# --------------------------------------------------------------------------- compare


async def _compare(pilot, ws, a: str, b: str, tab: str | None = None) -> CompareScreen:
    await runs_loaded(pilot)
    pilot.app.open_compare(ws.runs / a, ws.runs / b)
    screen = await screen_ready(pilot, CompareScreen)
    await wait_for(pilot, lambda: screen.data is not None)
    if tab:
        while screen.query_one(TabbedContent).active != tab:
            await pilot.press("t")
        await pilot.pause()
    return screen


async def test_compare_names_the_epochs_and_the_split_of_its_cells(demo) -> None:
    """Best and last epochs as the runs' events have them; the final export's cells are the
    test split, never just "final"."""
    import json

    def epochs(name: str) -> tuple[int, int]:
        lines = (demo.runs / name / "events.jsonl").read_text().splitlines()
        evs = [e for e in map(json.loads, lines) if e["kind"] == "epoch"]
        best = max(evs, key=lambda e: (e["val"]["acc_combined"], -e["epoch"]))
        return best["epoch"], evs[-1]["epoch"]

    (ba, la), (bb, lb) = epochs("amber-wave-1"), epochs("bold-river-2")
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compare(pilot, demo, "amber-wave-1", "bold-river-2", "cmp-metrics")
        head = str(screen.query_one("#cmp-head", Static).render())
        assert f"best epoch A {ba}, B {bb} · last epoch A {la}, B {lb}" in head
        assert "cells: test (best epochs)" in head and "final" not in head
        table = screen.query_one("#cmp-metrics-table", DataTable)
        assert [str(c.label) for c in table.columns.values()][4:] == ["last A", "last B", "Δ last"]


async def test_compare_cells_cursor_moves_and_values_never_touch(big) -> None:
    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _compare(pilot, big, "pair-a-11", "pair-b-12", "cmp-cells")
        heat = screen.query_one("#cmp-heat", Heatmap)
        assert heat.has_focus
        await pilot.press("right", "right", "down")
        assert screen.query_one(TabbedContent).active == "cmp-cells"
        assert heat.cursor == (1, 2)
        info = str(screen.query_one("#cmp-cell-info", Static).render())
        assert f"{heat.row_labels[1]} @ {heat.col_labels[2]} dB" in info
        import re

        lines = screen_lines(app)[heat.region.y : heat.region.bottom]
        assert not any(re.search(r"\d[+-]\d", ln) for ln in lines), lines


async def test_compare_cells_without_frames_are_no_data(big) -> None:
    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _compare(pilot, big, "amber-wave-1", "gap-cell-9", "cmp-cells")
        heat = screen.query_one("#cmp-heat", Heatmap)
        row = heat.row_labels.index("BPSK")
        assert heat.values[row] == [None] * len(heat.col_labels)
        heat.cursor = (row, 5)
        await pilot.pause()
        info = str(screen.query_one("#cmp-cell-info", Static).render())
        assert "B no data" in info and "0.0" not in info.split("B ")[-1]
        assert "BPSK" not in str(screen.query_one("#cmp-top", Static).render())


async def test_compare_reads_accuracies_in_percent(big) -> None:
    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _compare(pilot, big, "amber-wave-1", "bold-river-2", "cmp-metrics")
        table = screen.query_one("#cmp-metrics-table", DataTable)
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
        comb = [str(c) for c in rows["val.acc_combined"]]
        assert comb[1].endswith("%") and comb[3].endswith("pt"), comb
        assert not str(rows["val.loss"][1]).endswith("%")
        while screen.query_one(TabbedContent).active != "cmp-curves":
            await pilot.press("t")
        await pilot.pause()
        assert any("%┤" in ln for ln in screen_lines(app))


# --------------------------------------------------------------------------- GPUs


async def test_gpus_screen_on_a_cpu_only_box_shows_host_and_trainers(demo) -> None:
    app = make_app(demo)  # no NVIDIA driver
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        table = screen.query_one("#gpu-procs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1
                       and re.fullmatch(r"\d+\.\d", str(table.get_row_at(0)[2])))  # fmt: skip
        row = [str(c) for c in table.get_row_at(0)]
        assert row[:2] == ["fresh-dew-6", str(os.getpid())]  # the trainer's pid in status.json
        assert row[3].endswith("MiB") and row[5] == "-"
        head = str(screen.query_one("#gpu-head", Static).render())
        assert "host: CPU" in head and "cores" in head and "GiB" in head
        assert "no NVIDIA GPU" in str(screen.query_one("#gpu-none", Static).render())


async def test_gpus_screen_shows_each_trainers_gpu_memory(demo) -> None:
    app = make_app(demo, gpu_sampler=sampler(FakeNVML(count=2, pids={1: [os.getpid()]})))
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        table = screen.query_one("#gpu-procs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1 and "MiB" in str(table.get_row_at(0)[5]))
        assert str(table.get_row_at(0)[5]) == "512 MiB (GPU 1)"
        holder = screen.query_one("#gpu-card-1 .gpu-holder", Static)
        await wait_for(pilot, lambda: "fresh-dew-6 (512 MiB)" in str(holder.render()))


def test_host_cpu_is_measured_between_samples_whatever_thread_takes_them() -> None:
    """The screen samples from a new worker thread each time: the second sample, taken in
    another thread after a CPU burn, still measures since the first (psutil.cpu_percent's
    own state is per thread: it answered 0.0 there)."""
    import threading
    import time

    from amc_tui.tui.models.procstat import ProcSampler

    sampler = ProcSampler()
    got: list = []
    first_done, release = threading.Event(), threading.Event()

    def first() -> None:
        got.append(sampler.host())
        first_done.set()
        release.wait(10)  # alive meanwhile: the second thread cannot reuse its ident

    t = threading.Thread(target=first)
    t.start()
    first_done.wait(10)
    end = time.process_time() + 0.3
    while time.process_time() < end:  # keep one core busy
        pass
    second = threading.Thread(target=lambda: got.append(sampler.host()))
    second.start()
    second.join(10)
    release.set()
    t.join(10)
    assert got[0].cpu_pct is None  # no data yet, not 0
    assert got[1].cpu_pct is not None and got[1].cpu_pct > 0, got[1]
    assert got[0].busy_cores is None and 0 < got[1].busy_cores <= got[1].cpus


async def test_gpus_screen_says_no_data_yet_before_the_first_cpu_sample(demo, monkeypatch) -> None:
    from amc_tui.tui.screens import gpus

    heads: list[str] = []
    trainer_cpu: list[str] = []
    line = gpus.host_line

    def recorded(host):
        heads.append(line(host))
        return heads[-1]

    monkeypatch.setattr(gpus, "host_line", recorded)
    app = make_app(demo)  # no NVIDIA driver
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        # what the head showed first is in `heads` (on a busy machine the second sample
        # may be drawn before this line runs: the drawn head is not the first one)
        table = screen.query_one("#gpu-procs", DataTable)
        await wait_for(pilot, lambda: heads and table.row_count == 1)
        trainer_cpu.append(str(table.get_row_at(0)[2]))
        await wait_for(pilot, lambda: len(heads) >= 3)
        trainer_cpu.append(str(table.get_row_at(0)[2]))
    assert heads[0].startswith("host: CPU no data yet · memory ")
    assert trainer_cpu[0] == "no data yet"
    for h in heads[1:]:
        assert re.match(r"host: CPU \d+\.\d of \d+ cores busy · memory ", h), h
    assert re.fullmatch(r"\d+\.\d", trainer_cpu[-1]), trainer_cpu


async def test_gpus_screen_gives_host_and_trainer_cpu_in_cores(demo, monkeypatch) -> None:
    """One unit for CPU: the host's busy cores of its cores, each trainer's cores (110 %
    of one core reads 1.1), labelled once."""
    from amc_tui.tui.models.procstat import HostStat, ProcStat
    from amc_tui.tui.screens import gpus

    class Procs:
        def host(self):
            return HostStat(cpus=2, cpu_pct=55.0, mem_used_mb=2048.0, mem_total_mb=8192.0)

        def sample(self, pids):
            return {p: ProcStat(p, True, 110.0, 300.0, 3) for p in pids}

    monkeypatch.setattr(gpus, "ProcSampler", Procs)
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_gpus()
        screen = await screen_ready(pilot, GpusScreen)
        table = screen.query_one("#gpu-procs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1 and table.get_row_at(0)[2] == "1.1")
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert "host: CPU 1.1 of 2 cores busy · memory 2.0 GiB of 8.0 GiB (25%)" in text
        assert any(ln.split()[:5] == ["run", "pid", "CPU", "cores", "memory"] for ln in lines)
        assert "%" not in str(table.get_row_at(0)[2])


async def test_hardest_cells_tables_tab_and_chance_line(demo) -> None:
    """The hardest cells are `run.tables`' (Wilson bound, minimum n, the floor named), the
    Tables tab holds the confused pairs and the reliable-from table, and the SNR curve draws
    the chosen head's chance level."""
    from amc_tui.run import tables
    from amc_tui.tui.widgets.curves import Curves

    run = demo.runs / "amber-wave-1"
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _analysis(pilot, demo, "amber-wave-1")
        want = tables.export_tables(run / "export" / "final", metric="acc_combined")
        hard = str(screen.query_one("#an-hard", Static).render())
        assert "Wilson 95% upper bound" in hard and f"n >= {tables.MIN_N}" in hard
        for c in want.hardest.cells:
            assert f"{c.modulation} @ {c.snr} dB" in hard and f"n={c.n}" in hard
        assert all(c.n >= tables.MIN_N for c in want.hardest.cells)
        text = str(screen.query_one("#an-tables", Static).render())
        assert "reliable from (test (best epoch" in text and "confused pairs (test (" in text
        for k in want.knees:
            assert re.search(rf"{k.modulation} +{re.escape(tables.knee_text(k, 0.5))}", text)
        chart = screen.query_one("#an-snr", Curves)
        (label, level), *_ = chart.chances
        per = per_cell(run / "export/final/per_cell.csv")
        n_mod = len({m for m, _ in per})
        n_snr = len({s for _, s in per})
        assert level == pytest.approx(1 / (n_mod * n_snr)) and label.startswith("chance ")
        screen.query_one("#an-metric", Select).value = "acc_mod"
        await wait_for(pilot, lambda: screen.data.metric == "acc_mod")
        await wait_for(pilot, lambda: chart.chances and chart.chances[0][1] == 1 / n_mod)
        while screen.query_one(TabbedContent).active != "tab-tables":
            await pilot.press("t")
        assert screen.focused is screen.query_one("#an-tables-box")
