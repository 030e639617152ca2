"""Live run screen: curves, log tail and GPU sparklines follow events.jsonl as it grows, read
incrementally (byte offset), also for a large event file."""

from __future__ import annotations

import json
import os

import pytest
from textual.widgets import Static
from tui_fixtures import (
    FUTURE,
    NOW,
    FakeNVML,
    add_epoch,
    big_event_file,
    demo_workspace,
    make_app,
    runs_loaded,
    sampler,
    screen_ready,
    wait_for,
)

from amc_tui.run.rundir import RunDir, append_event, write_status
from amc_tui.tui.models.live_model import MAX_STEP_POINTS
from amc_tui.tui.screens.live import LiveScreen, LiveUpdate
from amc_tui.tui.widgets.curves import Curves
from amc_tui.tui.widgets.gpu_panel import GpuCard
from amc_tui.tui.widgets.log_view import LogView

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo(tmp_path):
    return demo_workspace(tmp_path / "ws")


async def test_curves_log_and_gpus_follow_new_events(demo) -> None:
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_live(demo.runs / "fresh-dew-6")
        live = await screen_ready(pilot, LiveScreen)
        acc = live.query_one("#plot-acc", Curves)
        await wait_for(pilot, lambda: acc.series.get("combined", ([], []))[0] == [1, 2, 3])
        log = live.query_one("#live-log", LogView)
        assert log.lines[-1] == "epoch 3: val combined 0.30"
        assert log.border_title == "train.log · no GPU samples"
        assert not live.query_one("#live-gpus").display

        rd = RunDir(demo.runs / "fresh-dew-6")
        add_epoch(demo, "fresh-dew-6", 4, 0.61, t=NOW - 25)
        with open(rd.log, "a") as f:
            f.write("epoch 4: val combined 0.61\n")
        append_event(rd, "gpu", index=0, util=88, mem_used_mb=4000, mem_total_mb=8000,
                     temp_c=60, power_w=200)  # fmt: skip
        await wait_for(pilot, lambda: acc.series["combined"][0] == [1, 2, 3, 4])
        assert acc.series["combined"][1][-1] == pytest.approx(0.61)
        await wait_for(pilot, lambda: log.lines[-1] == "epoch 4: val combined 0.61")
        await wait_for(pilot, lambda: bool(live.query(GpuCard)))
        card = live.query_one(GpuCard)
        await wait_for(pilot, lambda: "88%" in str(card.query_one("#lbl-util").render()))
        assert "50%" in str(card.query_one("#lbl-mem").render())
        assert live.query_one("#live-gpus").display and log.border_title == "train.log"
        head = str(live.query_one("#live-head", Static).render())
        assert "epoch 4/10" in head and "running" in head
        # 6 epochs left x 60 s, counting down from epoch 4's event 25 s ago
        assert "ETA 5m35s " in head
        # read by offset: nothing was read twice
        assert live.tailer.offset == rd.events.stat().st_size
        assert live.tailer.reset_count == 0
        assert live.model.n_events == len(rd.events.read_bytes().splitlines())


async def test_large_event_file_streams_in_chunks_and_stays_bounded(demo) -> None:
    rd = RunDir(demo.runs / "dark-moon-4")
    size = big_event_file(rd.events, 60_000)  # ~10 MB of step events
    app = make_app(demo, live_poll_s=0.2)
    updates: list[bool] = []
    async with app.run_test(size=(80, 24), message_hook=lambda m: updates.append(
            m.caught_up) if isinstance(m, LiveUpdate) else None) as pilot:  # fmt: skip
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        await wait_for(pilot, lambda: live.tailer is not None and live.tailer.offset == size,
                       timeout=60)  # fmt: skip
        assert False in updates  # partial views were shown while catching up
        assert len(live.model.step_x) <= MAX_STEP_POINTS
        steps = live.query_one("#plot-steps", Curves)
        await wait_for(pilot, lambda: len(steps.series.get("loss", ([], []))[0]) > 100)
        before = live.tailer.offset
        append_event(rd, "epoch", epoch=9, val={"acc_combined": 0.5}, train={})
        added = len(rd.events.read_bytes()) - before
        await wait_for(pilot, lambda: live.tailer.offset == before + added)
        assert live.model.epoch_rows[9]["val"]["acc_combined"] == 0.5
        assert live.tailer.reset_count == 0


async def test_gpu_sparklines_fall_back_to_nvml_for_the_runs_gpu(demo) -> None:
    rd = RunDir(demo.runs / "fresh-dew-6")
    write_status(rd, device="cuda:1", gpus=[1])  # no gpu events from this trainer
    app = make_app(demo, live_poll_s=0.2, gpu_sampler=sampler(FakeNVML(count=2)))
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        await wait_for(pilot, lambda: bool(live.query("#live-gpu-1")))
        card = live.query_one("#live-gpu-1", GpuCard)
        await wait_for(pilot, lambda: "47%" in str(card.query_one("#lbl-util").render()))
        assert not live.query("#live-gpu-0")  # only the run's own GPU


async def test_failed_run_shows_its_error_in_place(demo) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(demo.runs / "calm-sky-3")
        await screen_ready(pilot, LiveScreen)
        head = app.screen.query_one("#live-head", Static)
        await wait_for(pilot, lambda: "failed" in str(head.render()))
        text = str(head.render())
        assert "ValueError: boom" in text and "Traceback" not in text


async def test_torn_last_line_waits_for_its_end(demo) -> None:
    rd = RunDir(demo.runs / "fresh-dew-6")
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        await wait_for(pilot, lambda: live.view is not None and live.view.epochs == [1, 2, 3])
        line = json.dumps({"t": 1.0, "kind": "epoch", "epoch": 4, "val": {"acc_combined": 0.7}})
        with open(rd.events, "a") as f:
            f.write(line[:20])  # a writer caught mid-line
        await pilot.pause(0.6)
        assert live.view.epochs == [1, 2, 3]
        with open(rd.events, "a") as f:
            f.write(line[20:] + "\n")
        await wait_for(pilot, lambda: live.view.epochs == [1, 2, 3, 4])


# --------------------------------------------------------------------------- charts


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def y_label_of_line(lines: list[str], region) -> str:
    """The y tick label on the chart row the (flat) plotted line is drawn on."""
    rows = [ln[region.x : region.right] for ln in lines[region.y : region.bottom]]
    drawn = max(rows, key=lambda ln: sum(ln.count(c) for c in "▀▄▞▚▖▗▘▝"))
    return drawn.split("┤")[0].strip() if "┤" in drawn else drawn.split("│")[0].strip()


def _equal_weights(rd: RunDir) -> None:
    for e in (4, 5):
        append_event(rd, "epoch", epoch=e, t=NOW - 100 + e, epoch_time_s=60.0,
                     val={"acc_combined": 0.3, "loss": 1.0}, train={"loss": 1.1},
                     weights={"mod": 0.5, "snr": 0.5})  # fmt: skip


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_weight_shares_read_at_their_tick(demo, size) -> None:
    rd = RunDir(demo.runs / "dark-moon-4")
    lines = [json.loads(x) for x in rd.events.read_text().splitlines()]
    rd.events.write_text("".join(json.dumps(ev) + "\n" for ev in lines
                                 if ev.get("kind") != "epoch"))  # fmt: skip
    _equal_weights(rd)
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=size) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        chart = live.query_one("#plot-weights", Curves)
        await wait_for(pilot, lambda: chart.series.get("mod", ([], []))[0] == [4, 5])
        while not chart.display or chart.region.height == 0 or not chart.has_class("-shown"):
            if size[0] >= 120:
                break
            await pilot.press("p")
        await pilot.pause()
        assert y_label_of_line(screen_lines(app), chart.region) == "50%"
        r = chart.region
        x_ticks = screen_lines(app)[r.bottom - 2][r.x : r.right].split()
        assert x_ticks == ["4", "5"], x_ticks  # whole epochs


async def test_step_chart_says_why_it_is_empty(demo) -> None:
    rd = RunDir(demo.runs / "dark-moon-4")  # stopped, and no step events
    lines = [json.loads(x) for x in rd.events.read_text().splitlines()]
    rd.events.write_text("".join(json.dumps(ev) + "\n" for ev in lines
                                 if ev.get("kind") != "step"))  # fmt: skip
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        await wait_for(pilot, lambda: live.view is not None and live.view.epochs == [1, 2, 3])
        await pilot.press("p", "p")  # the step chart
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "no step data (step_log_every = 50)" in text and "waiting" not in text


async def test_elapsed_continues_across_a_resume(demo) -> None:
    from amc_tui import report

    rd = RunDir(demo.runs / "dark-moon-4")  # stopped after its first attempt
    evs = [json.loads(x) for x in rd.events.read_text().splitlines()]
    first = evs[0]["t"]
    ended = next(ev["t"] for ev in evs if ev["kind"] == "end")
    restart = NOW - 90
    append_event(rd, "start", t=restart, resumed=True, n_val=100)
    write_status(rd, state="running", pid=os.getpid(), started_at=restart, ended_at=None,
                 heartbeat_at=FUTURE)  # fmt: skip
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        head = live.query_one("#live-head", Static)
        await wait_for(pilot, lambda: "running" in str(head.render()))
        expected = report.duration((ended - first) + (NOW - restart))
        assert f"elapsed {expected}" in str(head.render())
        assert f"elapsed {report.duration(NOW - restart)} " not in str(head.render())


async def test_marked_runs_overlay_in_one_colour_each_with_smoothing_and_x_axis(demo) -> None:
    from amc_tui.tui.models.axes import RUN_COLORS

    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        runs = app.screen
        table = runs.query_one("DataTable")
        for name in ("bold-river-2", "dark-moon-4"):
            table.move_cursor(row=table.get_row_index(str(demo.runs / name)))
            await pilot.press("m")
        app.open_live(demo.runs / "amber-wave-1")
        live = await screen_ready(pilot, LiveScreen)
        acc = live.query_one("#plot-acc", Curves)
        await wait_for(pilot, lambda: len(acc.lines) == 3)
        want = {"bold-river-2": RUN_COLORS[0], "dark-moon-4": RUN_COLORS[1],
                "amber-wave-1": RUN_COLORS[2]}  # fmt: skip
        for key in ("loss", "acc", "steps", "weights"):
            chart = live.query_one(f"#plot-{key}", Curves)
            assert {ln.label: ln.color for ln in chart.lines} == want, key
        assert acc.series["dark-moon-4"][0] == [1, 2, 3]
        assert acc.series["amber-wave-1"][1] == [
            pytest.approx(ev["val"]["acc_combined"]) for ev in _epochs(demo, "amber-wave-1")
        ]
        await pilot.press("z")
        assert acc.smooth == 0.6 and "smoothed 0.6" in "\n".join(screen_lines(app))
        await pilot.press("z", "z")
        assert acc.smooth == 0.0
        await pilot.press("x")
        assert acc.xlabel == "step"
        assert acc.series["amber-wave-1"][0] == [3.0, 6.0, 9.0, 12.0]  # 3 steps per epoch
        await pilot.press("x")
        assert acc.xlabel.startswith("training time")


def _epochs(ws, name: str) -> list[dict]:
    rd = RunDir(ws.runs / name)
    return [e for e in map(json.loads, rd.events.read_text().splitlines())
            if e["kind"] == "epoch"]  # fmt: skip


async def test_a_run_without_validation_data_draws_no_val_curve(demo) -> None:
    rd = RunDir(demo.runs / "dark-moon-4")
    evs = [json.loads(x) for x in rd.events.read_text().splitlines()]
    for ev in evs:
        if ev["kind"] == "start":
            ev["n_val"] = 0
        if ev["kind"] == "epoch":
            ev["val"] = {k: 0.0 for k in ev["val"]}
    rd.events.write_text("".join(json.dumps(ev) + "\n" for ev in evs))
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        await wait_for(pilot, lambda: live.view is not None and live.view.epochs == [1, 2, 3])
        acc = live.query_one("#plot-acc", Curves)
        loss = live.query_one("#plot-loss", Curves)
        assert acc.series["combined"] == ([], []) and loss.series["val"] == ([], [])
        assert len(loss.series["train"][0]) == 3
        await pilot.press("p")  # the accuracy chart
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "no validation data" in text and "0%┤" not in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_overlaid_runs_are_said_to_be_the_marked_ones(demo, size) -> None:
    """A run with no epoch yet, two runs marked on Runs: the charts hold only the marked
    runs' lines, and the screen says whose they are and names the run it shows."""
    from runs_fixtures import make_fake_run

    rd = make_fake_run(demo, "just-born-7", run_id="j7j7j7j7", seed=7, state="running",
                       epochs=10, epoch=0, pid=os.getpid(), heartbeat_at=FUTURE)  # fmt: skip
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=size) as pilot:
        await runs_loaded(pilot)
        table = app.screen.query_one("DataTable")
        for name in ("bold-river-2", "dark-moon-4"):
            table.move_cursor(row=table.get_row_index(str(demo.runs / name)))
            await pilot.press("m")
        app.open_live(rd.path)
        live = await screen_ready(pilot, LiveScreen)
        acc = live.query_one("#plot-acc", Curves)
        await wait_for(pilot, lambda: len(acc.lines) == 2)
        assert {ln.label for ln in acc.lines} == {"bold-river-2", "dark-moon-4"}
        await pilot.pause()
        text = " ".join(" ".join(screen_lines(app)).split())
        said = "overlay: bold-river-2, dark-moon-4 (marked on Runs); just-born-7: no epoch yet"
        assert said in text
        assert "just-born-7 (j7j7j7j7)" in text  # the head names the run shown
        # once it has one, it is one of the lines, and said to be this run
        add_epoch(demo, "just-born-7", 1, 0.4, t=NOW - 5)
        await wait_for(pilot, lambda: len(acc.lines) == 3)
        await pilot.pause()
        text = " ".join(" ".join(screen_lines(app)).split())
        assert "overlay: bold-river-2, dark-moon-4 (marked on Runs) + this run, just-born-7" in text


async def test_accuracy_chart_draws_the_chance_levels(demo) -> None:
    """One run: the modulation and SNR heads' chance (1 / classes of the start event), dashed
    and named in the legend; several runs: the combined chance they share."""
    from pathlib import Path

    from amc_tui.tui.models.live_charts import CHARTS, chart_chances
    from amc_tui.tui.models.live_model import LiveView
    from amc_tui.tui.models.overlay import Overlay

    name = "amber-wave-1"
    first = (demo.runs / name / "events.jsonl").read_text().splitlines()[0]
    start = json.loads(first)
    n_mod, n_snr = len(start["classes"]), len(start["snrs"])
    app = make_app(demo, live_poll_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await runs_loaded(pilot)
        app.open_live(demo.runs / name)
        live = await screen_ready(pilot, LiveScreen)
        acc = live.query_one("#plot-acc", Curves)
        await wait_for(pilot, lambda: bool(acc.chances))
        assert [level for _, level in acc.chances] == [1 / n_mod, 1 / n_snr]
        assert acc.chances[0][0] == f"chance mod {100 / n_mod:.1f}%"
        await pilot.pause()
        assert acc.chances[0][0] in "\n".join(screen_lines(app))
        assert live.query_one("#plot-loss", Curves).chances == ()
    acc_chart = next(c for c in CHARTS if c.key == "acc")
    a, b = Path("/a"), Path("/b")
    views = {d: LiveView(start={"classes": ["x"] * 4, "snrs": [0] * 5}) for d in (a, b)}
    ov = Overlay((a, b), {a: "red", b: "blue"})
    assert chart_chances(acc_chart, views, ov) == (("chance 5.0%", 1 / 20),)
    views[b] = LiveView(start={"classes": ["x"] * 3, "snrs": [0] * 5})
    assert chart_chances(acc_chart, views, ov) == ()  # runs on different grids: no one level


async def test_a_failed_mirror_is_one_line_in_the_head(demo) -> None:
    rd = RunDir(demo.runs / "calm-sky-3")
    message = "wandb mirror failed: ConnectionError: down"
    append_event(rd, "mirror", target="wandb", error="ConnectionError: down", message=message)
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_loaded(pilot)
        app.open_live(rd.path)
        await screen_ready(pilot, LiveScreen)
        head = app.screen.query_one("#live-head", Static)
        await wait_for(pilot, lambda: "mirror:" in str(head.render()))
        assert str(head.render()).count("wandb mirror failed: ConnectionError: down") == 1
