"""Notifications without a trainer: amc-tui.toml's [notify] table, `amc-tui notify test`,
the observers over hand-made run directories (tests/runs_fixtures.py) and sweep groups, the
once-only ledger and its `since` rule, a bad settings file, and the app's bell and toasts.
Messages go through apprise's `json://` to a real local HTTP server and are parsed there.
The real trainer, the worker, a followed `run` and the app together: test_notify_e2e.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from notify_fixtures import closed_port, hook_server, write_settings
from runs_fixtures import amc, make_fake_run, runs_workspace
from tui_fixtures import make_app
from tui_fixtures import wait_for as wait_app

from amc_tui.fsutil import append_line, atomic_write_json
from amc_tui.notify import ledger, settings
from amc_tui.notify.observe import observe_run, observe_workspace
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, read_status
from amc_tui.workspace import Workspace

HEALTH = {"kind": "health", "rule": "learned-nothing", "active": True, "epoch": 2, "step": 6,
          "message": "learned nothing: val modulation 5.9 % vs chance 5.9 % (p = 0.48) after 2 epochs",
          "values": {"p": 0.48}, "action": None}  # fmt: skip


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return runs_workspace(tmp_path)


def records(ws: Workspace) -> list[dict]:
    return ledger.records(ledger.ledger_dir(ws))


def end_now(ws: Workspace, name: str, state: str, **kw) -> RunDir:
    """A run that ended just now (its events and end after the ledger's `since`)."""
    return make_fake_run(ws, name, state=state, created_at=time.time(), exports=False, **kw)


# --------------------------------------------------------------------------- settings


def test_settings_names_the_nearest_key_event_and_table(tmp_path: Path) -> None:
    assert settings.load(tmp_path) is None  # no file: nothing configured
    conf = settings.parse('[notify]\nurls = ["json://h/x"]\non = ["ended", "plateau"]\n')
    assert conf.urls == ("json://h/x",)
    assert conf.on == {"completed", "failed", "crashed", "stopped", "plateau"}
    default = settings.parse('[notify]\nurls = ["json://h/x"]\n').on
    assert {"completed", "crashed", "stalled", "learned-nothing", "group-done"} <= default
    assert "group-best" not in default
    bad = {
        '[notify]\nurl = ["json://h/x"]\n': "unknown key notify.url (did you mean 'urls'?)",
        '[notfy]\nurls = []\n': "unknown table [notfy] (did you mean 'notify'?)",
        '[notify]\nurls = ["json://h"]\non = ["crashd"]\n': "unknown event 'crashd' (did you mean 'crashed'?)",
        '[notify]\nurls = "json://h"\n': "notify.urls must be a list of non-empty strings",
        '[notify]\nurls = ["hello"]\n': "'hello' is not a URL",
        "[notify\n": "amc-tui.toml: ",
    }  # fmt: skip
    for text, want in bad.items():
        with pytest.raises(settings.SettingsError, match=None) as e:
            settings.parse(text)
        assert want in str(e.value), (text, str(e.value))


def test_notify_test_prints_each_url_and_its_answer(ws: Workspace) -> None:
    missing = amc(ws, "notify", "test")
    assert missing.returncode == 2 and "amc-tui.toml does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    (ws.root / "amc-tui.toml").write_text(
        '[notify]\nurls = ["json://127.0.0.1:9/x"]\non = ["crashd"]\n'
    )
    bad = amc(ws, "notify", "test")
    assert bad.returncode == 2 and "did you mean 'crashed'" in bad.stderr
    with hook_server() as hook:
        write_settings(ws.root, [hook.url("ok").replace("json://", "json://user:s3cret@")])
        ok = amc(ws, "notify", "test")
        assert ok.returncode == 0, ok.stderr
        assert f"json://user:****@127.0.0.1:{hook.port}/ok: ok" in ok.stdout
        assert "s3cret" not in ok.stdout
        (body,) = hook.got()
        assert body["path"] == "/ok" and body["title"] == "amc-tui: test"
        assert str(ws.root) in body["message"]
        dead = closed_port()
        write_settings(ws.root, [hook.url("ok"), f"json://127.0.0.1:{dead}/gone"])
        one_bad = amc(ws, "notify", "test")
    assert one_bad.returncode == 1
    lines = one_bad.stdout.splitlines()
    assert lines[0] == f"json://127.0.0.1:{hook.port}/ok: ok"
    assert lines[1].startswith(f"json://127.0.0.1:{dead}/gone: ") and "Connection" in lines[1]
    assert lines[2] == "1 of 2 URLs took the message"


# --------------------------------------------------------------------------- observers


def test_only_events_after_the_ledger_was_made_and_each_once(ws: Workspace) -> None:
    make_fake_run(ws, "old-done-1", state="completed", exports=False)  # ended in 2025
    with hook_server() as hook:
        write_settings(ws.root, [hook.url()])
        before = time.time()
        observe_workspace(ws)
        assert hook.got() == []  # configuring notifications sends nothing old
        since = json.loads((ledger.ledger_dir(ws) / "since.json").read_text())["since"]
        assert before - 0.01 <= since <= time.time() + 0.01
        done = end_now(ws, "calm-otter-2", "completed")
        failed = end_now(ws, "grim-heron-3", "failed")
        for _ in range(3):  # the worker's loop, the app's poll, a followed run: each once
            observe_workspace(ws)
            observe_run(done.path)
            observe_run(failed.path)
        bodies = hook.got()
    assert sorted(b["title"] for b in bodies) == [
        "amc-tui: calm-otter-2 completed", "amc-tui: grim-heron-3 failed"]  # fmt: skip
    by_title = {b["title"]: b for b in bodies}
    ok = by_title["amc-tui: calm-otter-2 completed"]
    assert ok["type"] == "success"
    assert ok["message"].startswith(f"calm-otter-2 ({json.loads(done.meta.read_text())['id']}) on ")
    assert "epoch 4/4, best val.acc_combined" in ok["message"]
    bad = by_title["amc-tui: grim-heron-3 failed"]
    assert bad["type"] == "failure" and "error: ValueError: boom" in bad["message"]
    recs = records(ws)
    assert [r["state"] for r in recs] == ["sent", "sent"]
    assert amc(ws, "show", "calm-otter-2").stdout.splitlines()[-1].endswith(": sent")
    assert all(
        r["answers"] == [{"url": hook.url().split("?")[0], "ok": True, "error": None}] for r in recs
    )


def test_a_health_event_and_a_status_health_rule_are_each_sent_once(ws: Workspace) -> None:
    run = make_fake_run(ws, "slow-lynx-4", state="running", created_at=time.time(),
                        pid=os.getpid(), exports=False)  # fmt: skip
    with hook_server() as hook:
        write_settings(ws.root, [hook.url()])
        observe_workspace(ws)  # makes the ledger: since = now
        append_line(run.events, json.dumps({"t": time.time(), **HEALTH}))
        append_line(run.events, json.dumps({"t": time.time(), **HEALTH, "active": False}))
        status = read_status(run)
        status["health"] = [
            {"rule": "plateau", "epoch": 2, "message": "plateau: no gain in 3 epochs"}
        ]
        status["heartbeat_at"] = time.time()
        atomic_write_json(run.status, status)
        for _ in range(3):
            observe_run(run.path)
            observe_workspace(ws)
        bodies = hook.got()
    assert sorted(b["title"] for b in bodies) == [
        "amc-tui: slow-lynx-4 learned-nothing", "amc-tui: slow-lynx-4 plateau"]  # fmt: skip
    nothing = next(b for b in bodies if "learned-nothing" in b["title"])
    assert (
        "slow-lynx-4" in nothing["message"] and "learned-nothing at epoch 2/4" in nothing["message"]
    )
    assert HEALTH["message"] in nothing["message"] and nothing["type"] == "warning"
    keys = sorted(r["key"] for r in records(ws))
    run_id = json.loads(run.meta.read_text())["id"]
    assert keys == [f"{run_id}.health.learned-nothing.e2", f"{run_id}.health.plateau.e2"]


def test_a_stalled_run_is_sent_once_per_stall(ws: Workspace) -> None:
    run = make_fake_run(ws, "numb-crane-5", state="running", created_at=time.time(),
                        pid=os.getpid(), exports=False)  # fmt: skip
    lock = runlock.acquire(run.path)  # this process is the run's trainer, alive but silent
    folder = ledger.ledger_dir(ws)
    folder.mkdir(parents=True)
    now = time.time()
    (folder / "since.json").write_text(json.dumps({"since": now - 100}))  # made 100 s ago

    def beat(age: float) -> None:
        atomic_write_json(run.status, {**read_status(run), "heartbeat_at": time.time() - age})

    try:
        with hook_server() as hook:
            write_settings(ws.root, [hook.url()])
            beat(5)
            assert observe_workspace(ws) == []  # a fresh heartbeat: running
            beat(200)  # stale since 170 s: the stall began before the ledger was made
            observe_workspace(ws)
            assert hook.got() == []
            beat(60)  # stale since 30 s: after it
            for _ in range(3):
                observe_workspace(ws)
                observe_run(run.path)
            (body,) = hook.got()
    finally:
        lock.release()
    assert body["title"] == "amc-tui: numb-crane-5 stalled" and body["type"] == "warning"
    assert "numb-crane-5" in body["message"] and "no heartbeat for 1m0" in body["message"]


def test_an_unreachable_url_is_recorded_failed_with_the_error(ws: Workspace) -> None:
    dead = closed_port()
    write_settings(ws.root, [f"json://127.0.0.1:{dead}/gone"])
    observe_workspace(ws)
    end_now(ws, "lost-gull-6", "crashed")  # no end event: status.json says crashed
    run = ws.runs / "lost-gull-6"
    status = read_status(RunDir(run))
    atomic_write_json(run / "status.json", {**status, "state": "crashed", "ended_at": time.time()})
    observe_workspace(ws)
    observe_workspace(ws)
    (rec,) = records(ws)
    assert rec["state"] == "failed" and rec["event"] == "crashed"
    assert (
        rec["error"].startswith(f"json://127.0.0.1:{dead}/gone: ") and "Connection" in rec["error"]
    )
    assert rec["answers"][0]["ok"] is False
    shown = amc(ws, "show", "lost-gull-6").stdout.splitlines()[-1]
    assert (
        shown.startswith("  notified crashed at ")
        and f": failed: json://127.0.0.1:{dead}/gone: " in shown
    )


def test_a_bad_settings_file_is_recorded_once_and_breaks_nothing(ws: Workspace) -> None:
    (ws.root / "amc-tui.toml").write_text('[notify]\nurls = ["json://127.0.0.1:9/x"]\nwhen = 1\n')
    run = end_now(ws, "odd-mole-7", "completed")
    for _ in range(3):
        assert observe_workspace(ws) == []
        assert observe_run(run.path) == []
    (rec,) = records(ws)
    assert rec["state"] == "failed" and rec["event"] == "settings"
    assert "unknown key notify.when" in rec["error"]


# --------------------------------------------------------------------------- groups


def test_group_best_point_as_members_end_then_group_done(tmp_path: Path, monkeypatch) -> None:
    from runs_fixtures import fake_trainer_workspace
    from test_groups import write_sweep

    from amc_tui.launch.groups import create_group
    from amc_tui.sweeps.sweep import load_sweep

    gws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.05, epochs=2, stop_grace_s=5)
    (gws.root / "configs" / "sweeps").mkdir()
    group = create_group(gws, load_sweep(write_sweep(gws, repeats=1), gws.root), "g")
    with hook_server() as hook:
        write_settings(gws.root, [hook.url()], on=["group-done", "group-best"])
        observe_workspace(gws)  # since = now
        titles = []
        for i, m in enumerate(group.members):
            rd = gws.runs / m["name"]
            meta = json.loads((rd / "meta.json").read_text())
            for p in sorted(rd.iterdir(), reverse=True):  # the queued run, replaced by its end
                if p.is_file():
                    p.unlink()
            rd.rmdir()
            make_fake_run(gws, m["name"], run_id=m["id"], seed=7 * i + 1, epochs=2,
                          created_at=time.time())  # fmt: skip
            new = json.loads((rd / "meta.json").read_text())
            new.update({k: meta[k] for k in ("group", "point", "repeat")})
            (rd / "meta.json").write_text(json.dumps(new))
            observe_workspace(gws)
            observe_workspace(gws)
            titles.append([b["title"] for b in hook.got()])
    assert titles[0] == ["amc-tui: group g new best point p0"]
    assert titles[1][-1] == "amc-tui: group g done" and len(titles[1]) == 2
    done = hook.got()[-1]["message"]
    assert done.startswith("group g done on ") and "2 runs (2 completed)" in done
    assert "best point p" in done and "val.acc_combined" in done and "(n = 1)" in done


# --------------------------------------------------------------------------- the app


@pytest.mark.anyio
async def test_the_app_rings_and_toasts_for_runs_its_session_watched(ws: Workspace) -> None:
    make_fake_run(ws, "ended-before-1", state="failed", exports=False)
    live = make_fake_run(ws, "watch-me-2", state="running", created_at=time.time(),
                         pid=os.getpid(), exports=False)  # fmt: skip
    app = make_app(ws, alerts_poll_s=0.1, runs_poll_s=60.0)
    rung: list[float] = []
    bell = app.bell
    app.bell = lambda: (rung.append(time.time()), bell())[1]  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_app(pilot, lambda: app._alerts is not None and app._alerts.watched)
        assert rung == []  # nothing of this session yet (the failed run ended before it)
        append_line(live.events, json.dumps({"t": time.time(), **HEALTH}))
        await wait_app(pilot, lambda: len(rung) == 1, timeout=10)
        status = read_status(live)
        atomic_write_json(live.status, {**status, "state": "completed", "ended_at": time.time()})
        append_line(
            live.events, json.dumps({"t": time.time(), "kind": "end", "state": "completed"})
        )
        await wait_app(pilot, lambda: len(rung) == 2, timeout=10)
        toasts = [(n.title, n.message) for n in app._notifications]
    assert [t for t, _ in toasts] == ["watch-me-2 learned-nothing", "watch-me-2 completed"]
    assert "watch-me-2" in toasts[1][1] and "completed" in toasts[1][1]
    assert not (ledger.ledger_dir(ws)).exists()  # nothing configured: nothing sent or recorded
