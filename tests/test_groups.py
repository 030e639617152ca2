"""Sweep groups without the real trainer: groups made by `create_group` whose members are then
written as finished runs (tests/runs_fixtures.py), or run by the stand-in trainer through the
real queue. Statistics, text, JSON, references, the queue's gate, Optuna's ask/tell, a study
stopped and resumed through the detached worker, and the Groups view at 80x24; the real
trainer end to end is tests/test_sweep_e2e.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runs_fixtures import (
    fake_trainer_workspace,
    group_json,
    group_state,
    kill_running,
    make_fake_run,
    wait_for,
)
from scipy import stats

from amc_tui.cli import main
from amc_tui.launch.groups import create_group
from amc_tui.run import runlock
from amc_tui.run.rundir import list_runs, read_events, read_run
from amc_tui.sweeps.group import Group, read_group, summarize
from amc_tui.sweeps.sweep import load_sweep
from amc_tui.workspace import Workspace

GRID = """\
base = "../fake.toml"
notes = "does DWA beat uncertainty weighting?"
[sweep]
repeats = {repeats}
max_parallel = {max_parallel}
[sweep.axes]
"loss.weighting" = ["uncertainty", "dwa"]
"""
T0 = 1_750_000_000.0


@dataclasses.dataclass
class Out:
    code: int
    out: str
    err: str


def cli(ws: Workspace, *args: str) -> Out:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-w", str(ws.root), *args])
    return Out(code, out.getvalue(), err.getvalue())


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    ws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.05, epochs=2, stop_grace_s=5)
    with open(ws.root / "configs" / "fake.toml", "a") as f:
        f.write("share_device = true\n")
    (ws.root / "configs" / "sweeps").mkdir()
    yield ws
    kill_running(ws)


def write_sweep(ws: Workspace, name: str = "s", repeats: int = 3, max_parallel: int = 0) -> Path:
    path = ws.root / "configs" / "sweeps" / f"{name}.toml"
    path.write_text(GRID.format(repeats=repeats, max_parallel=max_parallel))
    return path


def finished_group(ws: Workspace, name: str = "g", failed: str | None = None) -> Group:
    """A 2-point x 3-repeat group made by create_group, its members then written as finished
    runs (different seeds, so the repeats differ); `failed` names a member that failed."""
    group = create_group(ws, load_sweep(write_sweep(ws), ws.root), name)
    for i, m in enumerate(group.members):
        rd = ws.runs / m["name"]
        meta = json.loads((rd / "meta.json").read_text())
        shutil.rmtree(rd)
        make_fake_run(ws, m["name"], run_id=m["id"], seed=10 * m["point"] + m["repeat"],
                      state="failed" if m["name"] == failed else "completed", epochs=3,
                      created_at=T0 + i)  # fmt: skip
        new = json.loads((rd / "meta.json").read_text())
        new.update({k: meta[k] for k in ("group", "point", "repeat")})
        (rd / "meta.json").write_text(json.dumps(new))
    from amc_tui.runlog.sync import sync_all

    sync_all(ws)
    return group


def best_values(ws: Workspace, names: list[str], metric: str) -> np.ndarray:
    """The metric at each run's best epoch (highest val.acc_combined), from its events."""
    split, _, key = metric.partition(".")
    out = []
    for name in names:
        evs = [json.loads(ln) for ln in (ws.runs / name / "events.jsonl").read_text().splitlines()]
        epochs = [e for e in evs if e["kind"] == "epoch"]
        best = max(epochs, key=lambda e: (e["val"]["acc_combined"], -e["epoch"]))
        out.append(best[split][key])
    return np.array(out, dtype=float)


# --------------------------------------------------------------------------- creating


def test_create_group_writes_the_record_and_queued_members(ws: Workspace) -> None:
    group = create_group(ws, load_sweep(write_sweep(ws, repeats=2), ws.root), "g")
    data = json.loads((ws.root / "groups" / "g" / "group.json").read_text())
    assert data["id"] == group.id and data["name"] == "g" and data["created_at"] > 0
    assert data["sweep"]["strategy"] == "grid" and data["sweep"]["n_runs"] == 4
    assert [p["values"] for p in data["points"]] == [
        {"loss.weighting": "uncertainty"}, {"loss.weighting": "dwa"}]  # fmt: skip
    names = [m["name"] for m in data["members"]]
    assert names == ["g-p0-r0", "g-p0-r1", "g-p1-r0", "g-p1-r1"]
    for m in data["members"]:
        info = read_run(ws.runs / m["name"])
        meta = json.loads((ws.runs / m["name"] / "meta.json").read_text())
        assert info.state == "queued" and info.id == m["id"]
        assert meta["group"] == "g" and meta["repeat"] == m["repeat"]
        assert meta["point"] == data["points"][m["point"]]["values"]
        assert f"seed = {m['seed']}" in (ws.runs / m["name"] / "config.toml").read_text()
    assert [m["seed"] for m in data["members"]] == [0, 1, 0, 1]
    text = ws.runlog.read_text()
    assert f"<!-- amc-tui:group-begin {group.id} -->" in text
    assert "**Status**: **RUNNING** (4 queued)" in text


def test_bad_input_is_one_line_exit_2_and_creates_nothing(ws: Workspace) -> None:
    bad = ws.root / "bad.toml"
    bad.write_text(GRID.format(repeats=1, max_parallel=0).replace('"loss.weighting"', '"loss.weightin"')
                   .replace("../fake.toml", "configs/fake.toml"))  # fmt: skip
    out = cli(ws, "sweep", str(bad))
    assert out.code == 2 and "did you mean 'loss.weighting'" in out.err
    assert out.err.count("\n") == 1
    many = ws.root / "many.toml"
    many.write_text(GRID.format(repeats=101, max_parallel=0).replace("../fake", "configs/fake"))
    out = cli(ws, "sweep", str(many))
    assert out.code == 2 and "202 runs" in out.err and "--allow-many" in out.err
    assert not (ws.root / "groups").exists() and list_runs(ws) == []
    create_group(ws, load_sweep(write_sweep(ws, repeats=1), ws.root), "taken")
    before = sorted(p.name for p in ws.runs.iterdir())
    out = cli(ws, "sweep", str(write_sweep(ws, repeats=1)), "--name", "taken")
    assert out.code == 2 and "already exists" in out.err
    assert sorted(p.name for p in ws.runs.iterdir()) == before
    assert sorted(p.name for p in (ws.root / "groups").iterdir()) == ["taken"]


def test_references_matching_nothing_or_several_name_the_candidates(ws: Workspace) -> None:
    for name in ("ab1", "ab2"):
        create_group(ws, load_sweep(write_sweep(ws, repeats=1), ws.root), name)
    out = cli(ws, "group", "show", "zz")
    assert out.code == 2 and "no group matches 'zz'" in out.err and "ab1 (" in out.err
    out = cli(ws, "group", "show", "ab")
    assert out.code == 2 and "ambiguous" in out.err and "ab1" in out.err and "ab2" in out.err
    out = cli(ws, "compare", "ab1:p7", "ab2:p0")
    assert out.code == 2 and "no point 'p7'" in out.err and "p1 (loss.weighting=dwa)" in out.err
    out = cli(ws, "compare", "ab", "ab1")  # a prefix of two groups and of their runs
    assert out.code == 2 and "ambiguous" in out.err
    out = cli(ws, "plot", "nothing", "--out", str(ws.root / "figs"))
    assert out.code == 2 and "no run matches 'nothing'" in out.err and "groups: " in out.err


def test_dry_run_estimates_time_from_earlier_runs(ws: Workspace) -> None:
    make_fake_run(ws, "earlier-1", epochs=4, seed=1, arch="swin_tiny")  # the base's arch, 224 px
    out = cli(ws, "sweep", str(write_sweep(ws, repeats=2)), "--dry-run")
    assert out.code == 0, out.err
    assert "POINT  loss.weighting  SEEDS  RUNS  EST/RUN" in out.out
    assert "p1     dwa             0, 1   2" in out.out
    assert "estimated time: " in out.out and "unknown" not in out.out
    assert not (ws.root / "groups").exists() and [r.name for r in list_runs(ws)] == ["earlier-1"]


# --------------------------------------------------------------------------- statistics


def test_show_json_matches_a_recomputation_and_names_the_excluded(ws: Workspace) -> None:
    finished_group(ws, failed="g-p1-r2")
    out = cli(ws, "group", "show", "g", "--json")
    assert out.code == 0, out.err
    data = json.loads(out.out)
    assert data["group"]["state"] == "done"
    for p in data["points"]:
        names = [m["name"] for m in p["members"] if m["state"] == "completed"]
        for metric in ("val.acc_combined", "val.loss", "train.acc_mod"):
            x = best_values(ws, names, metric)
            half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
            got = p["best"][metric]
            assert got["n"] == len(x) == (2 if p["key"] == "p1" else 3)
            assert got["mean"] == pytest.approx(x.mean()) and got["std"] == pytest.approx(
                x.std(ddof=1))  # fmt: skip
            assert (got["ci_lo"], got["ci_hi"]) == pytest.approx((x.mean() - half, x.mean() + half))
    assert data["excluded"] == [{"name": "g-p1-r2", "point": "p1", "reason": "failed"}]
    assert [r["rank"] for r in data["ranking"]] == [1, 2]
    (eff,) = data["effects"]
    assert eff["axis"] == "loss.weighting dwa vs uncertainty" and eff["n_a"] == 2
    assert eff["sentence"].startswith("loss.weighting dwa vs uncertainty: ")
    text = cli(ws, "group", "show", "g").out
    assert "excluded members:\n  g-p1-r2 (p1): failed" in text
    assert eff["sentence"] in text and "best point: p" in text
    # the point tables: each point's band accuracy with its CI; fake exports predate the
    # per-SNR confusion, and say so
    assert "accuracy per SNR band (mean ± 95 % CI half-width" in text
    assert re.search(r"^p1 +2 ", text, re.M) and re.search(r"^p0 +3 ", text, re.M)
    assert "most confused pairs per SNR band" in text and "not in this export" in text


def test_runlog_entry_keeps_hand_text_and_every_writer_agrees(ws: Workspace) -> None:
    ws.runlog.write_text("# RUNLOG\n\nMy notes, by hand.\n")
    group = finished_group(ws, failed="g-p1-r2")
    text = ws.runlog.read_text()
    assert text.startswith("# RUNLOG\n\nMy notes, by hand.\n")
    entry = text[text.index(f"group-begin {group.id}") : text.index(f"group-end {group.id}")]
    assert "**Question**: does DWA beat uncertainty weighting?" in entry
    assert "| p0 | loss.weighting=uncertainty | 3 | " in entry and " ± " in entry
    assert "**Best point**: p" in entry and "- loss.weighting dwa vs uncertainty: " in entry
    assert "❌ g-p1-r2 (failed, excluded)" in entry
    assert "**Group**: g, point loss.weighting=dwa, repeat 2" in text
    ws.runlog.write_text(text.replace("My notes, by hand.", "My notes, edited."))
    out = cli(ws, "runlog", "sync")
    assert out.code == 0 and "is current" in out.out
    assert ws.runlog.read_text() == text.replace("My notes, by hand.", "My notes, edited.")


def test_compare_points_and_groups(ws: Workspace) -> None:
    finished_group(ws)
    out = cli(ws, "compare", "g:p1", "g:loss.weighting=uncertainty", "--json")
    assert out.code == 0, out.err
    data = json.loads(out.out)
    assert data["a"]["label"].startswith("g:p1") and data["a"]["n"] == 3
    row = next(r for r in data["metrics"] if r["metric"] == "val.acc_combined")
    a = best_values(ws, ["g-p1-r0", "g-p1-r1", "g-p1-r2"], "val.acc_combined")
    b = best_values(ws, ["g-p0-r0", "g-p0-r1", "g-p0-r2"], "val.acc_combined")
    d = a - b  # both points ran seeds 0, 1, 2: paired on the seed
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert row["paired"] is True and row["diff"] == pytest.approx(d.mean())
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    text = cli(ws, "compare", "g:p1", "g-p0-r0").out
    assert "A = g:p1 (loss.weighting=dwa): 3 completed run(s)" in text
    assert "B = run g-p0-r0" in text and "too few runs for a CI" in text
    whole = cli(ws, "compare", "g", "g:p0")
    assert whole.code == 0 and "A = group g (all points): 6 completed run(s)" in whole.out


def test_ls_and_groups_list_members(ws: Workspace) -> None:
    finished_group(ws)
    make_fake_run(ws, "outsider-1", seed=99)
    out = cli(ws, "ls", "--group", "g", "--json")
    assert sorted(r["name"] for r in json.loads(out.out)) == [
        f"g-p{p}-r{r}" for p in (0, 1) for r in (0, 1, 2)]  # fmt: skip
    (row,) = json.loads(cli(ws, "groups", "--json").out)
    assert row["name"] == "g" and row["state"] == "done" and row["progress"]["done"] == 6
    assert row["best"]["n"] == 3
    assert cli(ws, "groups").out.splitlines()[0].split()[:3] == ["NAME", "ID", "STATE"]


def test_plot_of_a_run_without_export_is_one_line_exit_2(ws: Workspace) -> None:
    make_fake_run(ws, "bare-1", seed=1, exports=False)
    out = cli(ws, "plot", "bare-1", "--out", str(ws.root / "figs"), "--figures", "snr")
    assert out.code == 2 and out.err.count("\n") == 1
    assert "run bare-1: no analysis export" in out.err
    assert not (ws.root / "figs").exists()


# --------------------------------------------------------------------------- the queue


def test_gate_keeps_max_parallel(ws: Workspace) -> None:
    from amc_tui.launch.group_gate import before_placement

    create_group(ws, load_sweep(write_sweep(ws, repeats=2, max_parallel=2), ws.root), "g")
    make_fake_run(ws, "outsider-1", state="queued", seed=5)
    runs = list_runs(ws, with_last_epoch=False)
    by_name = {r.name: r for r in runs}
    running = [dataclasses.replace(by_name["g-p0-r0"], state="running")]
    runs = [r for r in runs if r.name != "g-p0-r0"] + running
    _, admit = before_placement(ws, runs)
    assert admit(by_name["g-p0-r1"]) is True  # the second of max_parallel 2
    assert admit(by_name["g-p1-r0"]) is False
    assert admit(by_name["outsider-1"]) is True  # not a member: no limit
    _, admit = before_placement(ws, runs)  # a new pass counts afresh
    assert admit(by_name["g-p1-r1"]) is True and admit(by_name["g-p0-r1"]) is False


def test_sweep_follows_the_group_through_the_real_queue(ws: Workspace) -> None:
    seen: list[int] = []
    halt = threading.Event()

    def watch() -> None:
        while not halt.wait(0.02):
            seen.append(sum(r.state == "running" for r in list_runs(ws, with_last_epoch=False)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out = cli(ws, "sweep", str(write_sweep(ws, repeats=2, max_parallel=2)))
    finally:
        halt.set()
        watcher.join(5)
    assert out.code == 0, out.err
    assert max(seen) == 2  # share_device lets all four start at once; max_parallel 2 holds
    lines = out.out.splitlines()
    assert lines[0].startswith("group s (") and "2 points x 2 repeats = 4 runs" in lines[0]
    assert any(ln.split()[1:3] == ["s-p1-r1", "completed"] for ln in lines if ln[:1].isdigit())
    assert "points by val.acc_combined at the best epoch" in out.out
    g = read_group(ws.root / "groups" / "s")
    assert g is not None and summarize(ws, g).state == "done"


def test_optuna_asks_as_trials_end_and_tells_each_result(ws: Workspace) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = ws.root / "configs" / "sweeps" / "opt.toml"
    path.write_text('base = "configs/fake.toml"\n[sweep]\nstrategy = "optuna"\ntrials = 2\n'
                    'metric = "val.loss"\n[sweep.axes]\n"train.lr" = { min = 1e-4, max = 1e-2, '
                    'log = true }\n')  # fmt: skip
    out = cli(ws, "sweep", str(path), "--name", "opt")
    assert out.code == 0, out.err
    g = read_group(ws.root / "groups" / "opt")
    assert g is not None and [p["trial"] for p in g.points] == [0, 1]
    starts = sorted((read_run(ws.runs / m["name"]).started_at or 0, m["point"]) for m in g.members)
    ends = {m["point"]: read_run(ws.runs / m["name"]).ended_at for m in g.members}
    for (start, _), (_, before) in zip(starts[1:], starts, strict=False):
        assert start >= ends[before]  # one trial in flight: each asked after the last ended
    storage = JournalStorage(JournalFileBackend(str(g.dir / "optuna.journal")))
    trials = optuna.load_study(study_name="opt", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    for t, p in zip(trials, g.points, strict=True):
        assert 1e-4 <= p["values"]["train.lr"] <= 1e-2 and t.params == p["values"]
        assert t.value == pytest.approx(p["value"]) and p["told"]


OPTUNA = """\
base = "configs/fake.toml"
[sweep]
strategy = "optuna"
trials = 4
repeats = 1
max_parallel = 2
metric = "val.loss"
seed = 3
[sweep.axes]
"train.lr" = { min = 1e-4, max = 1e-2, log = true }
"model.dropout" = { min = 0.0, max = 0.5 }
"""


def test_optuna_stops_resumes_and_never_repeats_a_finished_trial(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study worked by the detached queue worker, stopped after its first result and
    resumed: every trial completes once, and a result told before the stop stands."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    monkeypatch.delenv("AMC_TUI_NO_WORKER")
    # trial 0 holds after its epoch 1 until the stop: one is surely still running at it (its
    # resume trains on); the worker passes the knob to every trial, hence the name
    monkeypatch.setenv("FAKE_HOLD_AFTER", "opt-p0-r0:1")
    held_log = ws.runs / "opt-p0-r0" / "train.log"

    def trials_under_way() -> bool:
        """A result told, no trial waiting in the queue, every running trial's own process
        under way (its start event written), and trial 0 holding."""
        runs = list_runs(ws, with_last_epoch=False)
        running = [r for r in runs if r.state == "running"]
        return (any(p.get("told") for p in group_json(ws, "opt")["points"]) and bool(running)
                and all(r.state != "queued" for r in runs)
                and all(any(e["kind"] == "start" for e in read_events(r.rundir.events))
                        for r in running)
                and held_log.is_file() and "holding" in held_log.read_text().split())  # fmt: skip

    path = ws.root / "configs" / "sweeps" / "opt.toml"
    path.write_text(OPTUNA)
    out = cli(ws, "sweep", str(path), "--name", "opt", "--detach")
    assert out.code == 0, out.err
    wait_for(trials_under_way, every=0.1)
    stop = cli(ws, "group", "stop", "opt")
    assert stop.code == 0, stop.err
    told_before = {p["trial"]: p["value"] for p in group_json(ws, "opt")["points"] if p["told"]}
    assert group_state(ws, "opt") == "stopped"
    stopped = [r.name for r in list_runs(ws, with_last_epoch=False) if r.state == "stopped"]
    assert "opt-p0-r0" in stopped  # a trial was stopped mid-run
    # `group stop` returned once each stopped trainer let go of its run (it writes `stopped`,
    # then updates RUNLOG.md and exits): resume right away is not refused
    assert all(runlock.holder(ws.runs / name) is None for name in stopped)
    resume = cli(ws, "group", "resume", "opt")
    assert resume.code == 0, resume.err
    wait_for(lambda: group_state(ws, "opt") == "done", every=0.2)
    g = group_json(ws, "opt")
    assert [p["trial"] for p in g["points"]] == [0, 1, 2, 3]
    for p in g["points"]:
        assert 1e-4 <= p["values"]["train.lr"] <= 1e-2
        assert 0.0 <= p["values"]["model.dropout"] <= 0.5
        assert p["told"] and math.isfinite(p["value"])
    storage = JournalStorage(JournalFileBackend(str(ws.root / "groups" / "opt" / "optuna.journal")))
    study = optuna.load_study(study_name="opt", storage=storage)
    trials = {t.number: t for t in study.trials}
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials.values())
    for p in g["points"]:
        assert trials[p["trial"]].value == pytest.approx(p["value"])
        assert trials[p["trial"]].params == p["values"]

    def starts(name: str) -> list[bool]:
        evs = [json.loads(ln) for ln in (ws.runs / name / "events.jsonl").read_text().split()]
        return [bool(e.get("resumed")) for e in evs if e["kind"] == "start"]

    for number, value in told_before.items():  # a result told before the stop stands...
        assert trials[number].value == pytest.approx(value)
        member = next(m for m in g["members"] if m["point"] == number)
        assert starts(member["name"]) == [False]  # ...and its run was not repeated
    for name in stopped:  # a stopped trial was resumed, not started afresh
        assert starts(name)[-1] is True and read_run(ws.runs / name).state == "completed"


# --------------------------------------------------------------------------- the app


@pytest.mark.anyio
async def test_groups_view_points_members_and_back_at_80x24(ws: Workspace) -> None:
    from textual.widgets import DataTable

    from amc_tui.tui.app import AmcApp
    from amc_tui.tui.screens.groups import GroupsScreen

    finished_group(ws, failed="g-p1-r2")
    app = AmcApp(ws, runs_poll_s=60.0)

    async def rows(pilot: Any, level: str, n: int) -> list[list[str]]:
        for _ in range(200):
            await pilot.pause(0.05)
            screen = app.screen
            if isinstance(screen, GroupsScreen) and screen.level == level:
                table = screen.query_one(DataTable)
                if table.row_count == n:
                    return [[str(c) for c in table.get_row(k)] for k in table.rows]
        raise AssertionError(f"no {n} rows at level {level}")

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("G")
        (row,) = await rows(pilot, "groups", 1)
        assert row[:4] == ["g", "done", "grid", "5/6"]
        await pilot.press("enter")
        points = {r[1]: r for r in await rows(pilot, "points", 2)}
        assert sorted(points) == ["p0", "p1"]
        assert points["p1"][2] == "dwa" and points["p1"][3] == "2"
        assert " ± " in points["p0"][4] and points["p0"][6] == "3/3"
        assert points["p1"][6] == "2/3"
        table = app.screen.query_one(DataTable)
        while _row(table) != "p1":
            await pilot.press("down")
        await pilot.press("enter")
        members = await rows(pilot, "members", 3)
        assert members[2][:2] == ["g-p1-r2", "failed"] and members[2][-1] == "failed"
        await pilot.press("escape")
        await rows(pilot, "points", 2)
        await pilot.press("escape", "escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, GroupsScreen)


def _row(table: Any) -> str:
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.anyio
async def test_group_points_at_80x24_show_rank_ci_and_effects_as_group_show(
    ws: Workspace,
) -> None:
    """The points of a group at 80 columns: ranked as `group show --json` ranks them, each
    with n, mean ± std and the 95 % CI it gives (to the shown digits), then the best point
    and every effect sentence, all on screen and none cut."""
    from textual.widgets import DataTable

    from amc_tui.cli.groups import show_data
    from amc_tui.tui.app import AmcApp
    from amc_tui.tui.screens.groups import GroupsScreen

    group = finished_group(ws, failed="g-p1-r2")
    data = show_data(summarize(ws, group))
    assert data["effects"]  # dwa vs uncertainty
    app = AmcApp(ws, runs_poll_s=60.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("G")
        for _ in range(200):
            await pilot.pause(0.05)
            screen = app.screen
            if isinstance(screen, GroupsScreen) and screen.query_one(DataTable).row_count:
                break
        await pilot.press("enter")
        table = screen.query_one(DataTable)
        for _ in range(200):
            await pilot.pause(0.05)
            lines = [s.text for s in app.screen._compositor.render_strips()]
            if screen.level == "points" and table.row_count == 2 and "best point" in str(lines):
                break
        shown = [[str(c) for c in table.get_row(k)] for k in table.rows]
        assert [r[1] for r in shown] == [r["point"] for r in data["ranking"]]
        header = [str(c.label) for c in table.columns.values()]
        assert header == ["#", "point", "values", "n", "mean ± std", "95 % CI", "done"]
        by_key = {p["key"]: p for p in data["points"]}
        for row in shown:
            p = by_key[row[1]]
            stat = p["best"][group.metric]
            assert row[0] == str(p["rank"] or "-") and row[3] == str(p["n"])
            mean, std = (float(x) for x in re.findall(r"-?\d+\.\d+", row[4]))
            assert (mean, std) == pytest.approx((100 * stat["mean"], 100 * stat["std"]), abs=0.005)
            lo, hi = (float(x) for x in re.findall(r"-?\d+\.\d+", row[5]))
            assert (lo, hi) == pytest.approx((100 * stat["ci_lo"], 100 * stat["ci_hi"]), abs=0.005)
            # the whole row on screen, every cell whole
            pattern = r"\s+".join(re.escape(c) for c in row)
            assert any(re.search(pattern, ln) for ln in lines), (row, lines)
        screen_text = _flat(" ".join(lines))
        assert f"best point: {data['best_point']} (" in screen_text
        for e in data["effects"]:
            assert _flat(e["sentence"]) in screen_text, e["sentence"]


@pytest.mark.anyio
async def test_runlog_index_lists_group_entries_and_jumps_to_one_at_80x24(ws: Workspace) -> None:
    from textual.widgets import OptionList, Static

    from amc_tui.tui.app import AmcApp
    from amc_tui.tui.screens.runlog import RunlogScreen

    group = finished_group(ws)
    app = AmcApp(ws, runs_poll_s=60.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        app.open_runlog()
        for _ in range(200):
            await pilot.pause(0.05)
            if isinstance(app.screen, RunlogScreen) and app.screen.chunks:
                break
        screen = app.screen
        index = screen.query_one("#rl-index", OptionList)
        titles = [str(index.get_option_at_index(i).prompt) for i in range(index.option_count)]
        assert f"Group {group.name}" in titles
        assert sorted(t for t in titles if not t.startswith("Group ")) == sorted(
            m["name"] for m in group.members
        )
        head = str(screen.query_one("#rl-head", Static).render())
        assert "6 run entries · 1 group entry" in head
        await pilot.press("j")
        while index.highlighted != titles.index(f"Group {group.name}"):
            await pilot.press("down")
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if screen.query_one("#rl-scroll").scroll_y > 0:
                break
        assert screen.current == f"group-{group.id}"
        lines = [s.text for s in app.screen._compositor.render_strips()]
        assert any(f"Group {group.name} ({group.id})" in ln for ln in lines[:5]), lines[:5]


def test_creating_a_sweep_scans_the_workspace_once_not_per_member(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amc_tui.launch import create
    from amc_tui.run import index

    for i in range(5):  # earlier finished runs: the best of them is every member's baseline
        make_fake_run(ws, f"earlier-{i}", seed=i, epochs=3, created_at=T0 + i)
    scans: list[str] = []
    gits: list[str] = []
    real_list, real_git = index.list_runs, create._git_commit
    monkeypatch.setattr(
        index, "list_runs", lambda *a, **kw: scans.append("ls") or real_list(*a, **kw)
    )
    monkeypatch.setattr(create, "_git_commit", lambda root: gits.append("git") or real_git(root))
    group = create_group(ws, load_sweep(write_sweep(ws, repeats=3), ws.root), "g")
    assert len(group.members) == 6
    assert scans == ["ls"] and gits == ["git"]  # once for the sweep, not once per member
    best = max((read_run(ws.runs / f"earlier-{i}") for i in range(5)),
               key=lambda r: r.best["value"])  # fmt: skip
    for m in group.members:
        meta = json.loads((ws.runs / m["name"] / "meta.json").read_text())
        assert meta["baseline"]["name"] == best.name  # the same answer a scan per run gave


def test_group_members_are_read_without_scanning_the_workspace(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amc_tui.run import index, rundir

    group = finished_group(ws)
    for i in range(20):  # runs that are not members
        make_fake_run(ws, f"other-{i}", seed=i, epochs=3, exports=False)
    read: list[str] = []
    real = rundir.read_parts
    monkeypatch.setattr(index, "read_parts", lambda base: read.append(base) or real(base))
    shown = cli(ws, "group", "show", "g")
    assert shown.code == 0, shown.err
    assert sorted(Path(p).name for p in read) == sorted(m["name"] for m in group.members)
    assert not any("other-" in p for p in read)
