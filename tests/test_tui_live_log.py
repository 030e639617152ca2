"""The Live screen's train.log panel, judged by what it draws: it shows the last line of a
growing train.log whether opened at launch, mid-run or after a resume, across terminal
resizes and a rotated or truncated file, for a writer faster or slower than the poll; it
pauses when scrolled up ("paused, End to follow") and End follows again; at 80x24 a long
epoch line wraps (nothing cut) and the log gets the width. The writer here is the test
itself, appending to train.log in steps and waiting on what the screen shows, never a sleep.
"""

from __future__ import annotations

import os

import pytest
from runs_fixtures import make_fake_run
from tui_fixtures import FUTURE, FakeNVML, demo_workspace, make_app, sampler, screen_ready, wait_for

from amc_tui.launch.supervise import START_MARKER
from amc_tui.run.rundir import RunDir, append_event, write_status
from amc_tui.train.report import epoch_line
from amc_tui.tui.models.log_tail import LogChunk, LogTailer
from amc_tui.tui.screens.live import LiveScreen

pytestmark = pytest.mark.anyio

WRITERS = ("fast", "slow")


@pytest.fixture
def demo(tmp_path):
    return demo_workspace(tmp_path / "ws")


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def squash(text: str) -> str:
    return "".join(text.split())


def log_rows(app) -> list[str]:
    """The rows the log panel draws, inside its border and scrollbar."""
    r = app.screen.query_one("#live-log").scrollable_content_region
    return [row[r.x : r.right] for row in screen_lines(app)[r.y : r.bottom]]


def shows_last(app, line: str) -> bool:
    """`line` (wrapped or not) is the last thing the log panel draws."""
    return squash("".join(log_rows(app))).endswith(squash(line))


def append(path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.write("".join(f"{ln}\n" for ln in lines))


class Writer:
    """A trainer writing train.log: `fast` writes 25 lines per step without waiting for the
    screen (many lines per poll), `slow` one line per step, each shown before the next."""

    def __init__(self, pilot, path, kind: str) -> None:
        self.pilot, self.path, self.kind, self.n = pilot, path, kind, 0

    def line(self) -> str:
        self.n += 1
        return f"epoch {self.n}/400: val acc {self.n % 97:02d}%"

    async def run(self, steps: int = 4) -> None:
        app = self.pilot.app
        for _ in range(steps):
            if self.kind == "fast":
                lines = [self.line() for _ in range(25)]
                append(self.path, lines)
                await self.pilot.pause()
            else:
                lines = [self.line()]
                append(self.path, lines)
                await wait_for(self.pilot, lambda ln=lines[-1]: shows_last(app, ln), timeout=5)
        last = f"epoch {self.n}/400: val acc {self.n % 97:02d}%"
        await wait_for(self.pilot, lambda: shows_last(app, last), timeout=5)


def running_run(ws, name: str = "just-born-7") -> RunDir:
    """A run the launcher just started: running, no epoch yet, no train.log yet."""
    return make_fake_run(ws, name, run_id="j7j7j7j7", seed=7, state="running", epochs=400,
                         epoch=0, pid=os.getpid(), heartbeat_at=FUTURE)  # fmt: skip


def early_lines(n: int) -> list[str]:
    return ["amc-tui trainer: run follow, device cpu", "loading frames into RAM: 5,304 / 5,304",
            *(f"warm-up line {i}" for i in range(n))]  # fmt: skip


async def open_live(pilot, rd: RunDir) -> LiveScreen:
    pilot.app.open_live(rd.path)
    return await screen_ready(pilot, LiveScreen)


@pytest.mark.parametrize("kind", WRITERS)
async def test_log_follows_from_launch(demo, kind) -> None:
    rd = running_run(demo)
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_live(pilot, rd)
        append(rd.log, early_lines(3))  # the file appears after the screen opened
        await wait_for(pilot, lambda: shows_last(app, "warm-up line 2"), timeout=5)
        await Writer(pilot, rd.log, kind).run()


@pytest.mark.parametrize("kind", WRITERS)
async def test_log_follows_when_opened_mid_run(demo, kind) -> None:
    rd = running_run(demo)
    append(rd.log, early_lines(40))  # more than the panel holds
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_live(pilot, rd)
        await wait_for(pilot, lambda: shows_last(app, "warm-up line 39"), timeout=5)
        await Writer(pilot, rd.log, kind).run()


@pytest.mark.parametrize("kind", WRITERS)
async def test_log_follows_a_resumed_run(demo, kind) -> None:
    rd = RunDir(demo.runs / "dark-moon-4")  # stopped
    append(rd.log, [*early_lines(30), "stopped at epoch 3 (SIGTERM)"])
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_live(pilot, rd)
        await wait_for(pilot, lambda: shows_last(app, "stopped at epoch 3 (SIGTERM)"), timeout=5)
        # what `resume` does: the launcher appends its marker, the trainer appends after it
        append(rd.log, [f"{START_MARKER} at Mon Jan  1 00:00:00 2025: python -m amc_tui.train"])
        write_status(rd, state="running", pid=os.getpid(), heartbeat_at=FUTURE, ended_at=None)
        append_event(rd, "start", resumed=True, epoch=3)
        append(rd.log, ["amc-tui trainer: resuming from last.pt (epoch 3)"])
        await wait_for(pilot, lambda: shows_last(app, "resuming from last.pt (epoch 3)"),
                       timeout=5)  # fmt: skip
        await Writer(pilot, rd.log, kind).run()


@pytest.mark.parametrize("kind", WRITERS)
async def test_log_follows_across_terminal_resizes(demo, kind) -> None:
    rd = running_run(demo)
    append(rd.log, early_lines(40))
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_live(pilot, rd)
        await wait_for(pilot, lambda: shows_last(app, "warm-up line 39"), timeout=5)
        writer = Writer(pilot, rd.log, kind)
        await writer.run(2)
        for size in ((120, 40), (80, 24), (120, 40), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await writer.run(2)


async def test_log_follows_a_rotated_or_truncated_file(demo) -> None:
    rd = running_run(demo)
    append(rd.log, early_lines(40))
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_live(pilot, rd)
        await wait_for(pilot, lambda: shows_last(app, "warm-up line 39"), timeout=5)
        # rotated: a new file under the name
        rd.log.rename(rd.path / "train.log.1")
        append(rd.log, ["rotated 1", "rotated 2"])
        await wait_for(pilot, lambda: shows_last(app, "rotated 2"), timeout=5)
        assert "warm-up line 39" not in "".join(log_rows(app))  # the old file's lines went
        # truncated in place, then written again
        with open(rd.log, "w") as f:
            f.write("after truncation\n")
        await wait_for(pilot, lambda: shows_last(app, "after truncation"), timeout=5)
        await Writer(pilot, rd.log, "slow").run(3)


async def test_scrolling_up_pauses_and_end_follows_again(demo) -> None:
    rd = running_run(demo)
    append(rd.log, early_lines(40))
    app = make_app(demo, live_poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        live = await open_live(pilot, rd)
        await wait_for(pilot, lambda: shows_last(app, "warm-up line 39"), timeout=5)
        log = live.query_one("#live-log")
        log.focus()
        assert "End to follow" not in "\n".join(screen_lines(app))
        await pilot.press("up", "up", "up")
        await wait_for(pilot, lambda: "paused, End to follow" in "\n".join(screen_lines(app)),
                       timeout=5)  # fmt: skip
        before = log_rows(app)
        assert not shows_last(app, "warm-up line 39")
        # 170 lines: the panel holds 200, so the first 12 drop off the top meanwhile
        append(rd.log, [f"new line {i}" for i in range(170)])
        await wait_for(pilot, lambda: log.lines[-1] == "new line 169", timeout=5)
        await pilot.pause()
        assert log.lines[0] == "warm-up line 10"
        assert log_rows(app) == before  # the view stays on the lines the user put it on
        assert "paused, End to follow" in "\n".join(screen_lines(app))
        await pilot.press("end")
        await wait_for(pilot, lambda: shows_last(app, "new line 169"), timeout=5)
        assert "End to follow" not in "\n".join(screen_lines(app))
        append(rd.log, ["followed again"])
        await wait_for(pilot, lambda: shows_last(app, "followed again"), timeout=5)
        # scrolling back down to the end follows too
        await pilot.press("pageup")
        await wait_for(pilot, lambda: "paused, End to follow" in "\n".join(screen_lines(app)),
                       timeout=5)  # fmt: skip
        for _ in range(20):
            await pilot.press("pagedown")
        await wait_for(pilot, lambda: "End to follow" not in "\n".join(screen_lines(app)),
                       timeout=5)  # fmt: skip
        append(rd.log, ["at the end again"])
        await wait_for(pilot, lambda: shows_last(app, "at the end again"), timeout=5)


EPOCH = {"epoch": 4, "train": {"loss": 6.5449, "acc_mod": 0.189},
         "val": {"loss": 6.1234, "acc_mod": 0.2417, "acc_snr": 0.1633, "acc_combined": 0.0518},
         "samples_per_s": 1234.0, "epoch_time_s": 12.3, "is_best": True}  # fmt: skip


@pytest.mark.parametrize("gpu", [False, True], ids=["no-gpu", "gpu"])
async def test_a_long_epoch_line_is_shown_whole_at_80x24(demo, gpu) -> None:
    rd = running_run(demo)
    kw = {}
    if gpu:
        write_status(rd, device="cuda:1", gpus=[1])
        kw["gpu_sampler"] = sampler(FakeNVML(count=2))
    line = epoch_line(EPOCH, 30)
    final = "final (test split, best epoch 2): acc_mod 0.612 acc_snr 0.401 acc_combined 0.297"
    assert len(line) > 100
    app = make_app(demo, live_poll_s=0.1, **kw)
    async with app.run_test(size=(80, 24)) as pilot:
        live = await open_live(pilot, rd)
        append(rd.log, [*early_lines(5), line])
        await wait_for(pilot, lambda: shows_last(app, line), timeout=5)
        append(rd.log, [final])
        await wait_for(pilot, lambda: shows_last(app, final), timeout=5)
        text = squash("".join(log_rows(app)))
        assert squash(line) + squash(final) in text  # both whole, one after the other
        log = live.query_one("#live-log")
        if gpu:
            await wait_for(pilot, lambda: "47%" in "\n".join(screen_lines(app)), timeout=5)
            assert log.scrollable_content_region.width >= 60
        else:
            # no GPU: the log takes the whole width, and the screen still says why
            assert log.region.width == 80
            assert "no GPU samples" in "\n".join(screen_lines(app))


# --------------------------------------------------------------------------- the reader


def test_log_tailer_reads_what_was_appended_and_starts_over_on_a_new_file(tmp_path) -> None:
    path = tmp_path / "train.log"
    tail = LogTailer(path, tail_bytes=64)
    assert tail.poll() is None  # no file yet
    path.write_bytes(b"one\ntwo\nthr")
    assert tail.poll() == LogChunk(["one", "two"], "thr")
    assert tail.poll() is None  # unchanged
    with open(path, "ab") as f:
        f.write(b"ee\nprogress 1\rprogress 2")
    assert tail.poll() == LogChunk(["three"], "progress 2")
    with open(path, "ab") as f:
        f.write(b"\rprogress 3\n")
    assert tail.poll() == LogChunk(["progress 3"], "")
    with open(path, "ab") as f:  # a progress line written with end="\r"
        f.write(b"step 1\r")
    assert tail.poll() == LogChunk([], "step 1")
    with open(path, "ab") as f:
        f.write(b"step 2\r")
    assert tail.poll() == LogChunk([], "step 2")
    with open(path, "ab") as f:
        f.write(b"done\n")
    assert tail.poll() == LogChunk(["done"], "")
    # rotated: another file under the name, shorter or not
    path.rename(tmp_path / "train.log.1")
    path.write_bytes(b"new file line that is long enough\n")
    assert tail.poll() == LogChunk(["new file line that is long enough"], "", reset=True)
    # truncated in place
    path.write_bytes(b"x\n")
    assert tail.poll() == LogChunk(["x"], "", reset=True)
    # removed
    path.unlink()
    assert tail.poll() == LogChunk(reset=True)
    assert tail.poll() is None
    assert tail.resets == 3


def test_log_tailer_starts_at_the_tail_and_skips_a_burst(tmp_path) -> None:
    path = tmp_path / "train.log"
    path.write_bytes(b"".join(b"line %03d\n" % i for i in range(100)))  # 9 bytes a line
    tail = LogTailer(path, tail_bytes=40)
    # the last 40 bytes hold 4 whole lines and a cut one, which is dropped
    assert tail.poll() == LogChunk([f"line {i:03d}" for i in range(96, 100)])
    with open(path, "ab") as f:
        f.write(b"".join(b"line %03d\n" % i for i in range(100, 200)))
    assert tail.poll() == LogChunk([f"line {i:03d}" for i in range(196, 200)])
    path.write_bytes(b"".join(b"line %03d\n" % i for i in range(9)))  # 81 bytes, 36 kept
    assert tail.poll() == LogChunk([f"line {i:03d}" for i in range(5, 9)], reset=True)
