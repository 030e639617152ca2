"""The run-management CLI as real subprocesses (stand-in trainer with the real file contract):
run (foreground, --detach, Ctrl-C), ls, show, tail, stop, resume, compare, gpus, queue,
runlog sync, bad names and RUN references."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from runs_fixtures import ROW_KEYS, fake_trainer_workspace, make_fake_run, wait_for

from amc_tui.run.rundir import RunDir, read_run
from amc_tui.workspace import Workspace


@pytest.fixture
def cws(workspace, monkeypatch):
    return fake_trainer_workspace(workspace, monkeypatch, epoch_s=0.15, epochs=3, stop_grace_s=10.0)


def amc(ws: Workspace, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", *args], cwd=ws.root, capture_output=True,
        text=True, stdin=subprocess.DEVNULL, timeout=timeout, env=dict(os.environ),
    )  # fmt: skip


@pytest.fixture
def cli(cws, capsys):
    """`amc-tui ...` in this process (the read-only commands: no start-up cost per call)."""
    from amc_tui.cli import main

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        rc = main(["--workspace", str(cws.root), *args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out.out, out.err)

    return call


def test_run_foreground_prints_epochs_and_summary(cws, cli):
    out = amc(cws, "run", "configs/fake.toml", "--name", "fg-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("run fg-run (") and "\r" not in out.stdout
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ") and "val comb" in ln] == [
        "1/3", "2/3", "3/3",
    ]  # fmt: skip
    assert "fg-run (" in out.stdout and "completed, epoch 3/3" in out.stdout
    assert "RUNLOG:" in out.stdout and str(cws.runlog) in out.stdout
    rows = json.loads(cli("ls", "--json").stdout)
    assert len(rows) == 1
    for key in ROW_KEYS:
        assert key in rows[0]
    assert rows[0]["state"] == "completed" and rows[0]["best"]["metric"] == "val.acc_combined"


def test_run_exit_code_is_the_trainers(cws, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_AT", "2")
    out = amc(cws, "run", "configs/fake.toml")
    assert out.returncode == 1 and "failed" in out.stdout and "fake failure" in out.stdout


def test_detach_then_ls_show_tail_stop_resume(cws, cli, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD_AFTER", "1")  # it runs (after epoch 1) until stopped
    out = amc(cws, "run", "configs/fake.toml", "--detach", "--name", "bg-run")
    assert out.returncode == 0, out.stderr
    name, run_id, state = out.stdout.split()
    assert (name, state) == ("bg-run", "running") and len(run_id) == 8
    wait_for(lambda: read_run(cws.runs / name).epoch >= 1)
    ls = cli("ls", "--state", "running")
    assert "bg-run" in ls.stdout and "running" in ls.stdout
    assert cli("ls", "--state", "completed").stdout.startswith("no runs")
    assert cli("ls", "--state", "nope").returncode == 2
    show = cli("show", run_id[:5])
    assert show.returncode == 0 and "bg-run" in show.stdout and "export epoch_001" in show.stdout
    data = json.loads(cli("show", "bg", "--json").stdout)
    assert data["run"]["id"] == run_id and data["trajectory"][0]["epoch"] == 1
    stop = amc(cws, "stop", "bg-run")
    assert stop.returncode == 0 and "stopped; checkpoint" in stop.stdout
    tail = cli("tail", "bg-run")  # run has ended: prints everything and returns
    assert (
        tail.returncode == 0
        and "start bg-run" in tail.stdout
        and tail.stdout.rstrip().endswith("best " + tail.stdout.rstrip().rsplit("best ", 1)[1])
    )
    assert "end: stopped" in tail.stdout
    monkeypatch.setenv("FAKE_HOLD_AFTER", "2")  # the resumed trainer: after epoch 2
    res = amc(cws, "resume", "bg-run")
    assert res.returncode == 0 and "running" in res.stdout, res.stdout + res.stderr
    wait_for(lambda: read_run(cws.runs / name).epoch >= 2)
    assert amc(cws, "stop", "bg-run", "--grace", "5").returncode == 0
    assert read_run(cws.runs / name).state == "stopped"
    assert "nothing to stop" in amc(cws, "stop", "bg-run").stdout


def _terminal_sigint() -> None:
    """SIGINT as a terminal delivers it: a suite started in the background (`make test &`,
    CI scripts) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_gracefully_and_exits_130(cws):
    proc = subprocess.Popen(
        [sys.executable, "-m", "amc_tui.cli", "run", "configs/fake.toml", "--name", "int-run"],
        cwd=cws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, preexec_fn=_terminal_sigint,
        env={**os.environ, "FAKE_HOLD_AFTER": "1"},  # it runs (after epoch 1) until stopped
    )  # fmt: skip
    wait_for(lambda: read_run(cws.runs / "int-run").epoch >= 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "waiting for the checkpoint" in err
    info = read_run(cws.runs / "int-run")
    assert info.state == "stopped" and RunDir(info.dir).last_ckpt.is_file()


@pytest.mark.parametrize("bad", ["a/b", "../up", "x" * 65, "bell\x07"])
def test_bad_names_exit_2_and_create_nothing(cws, bad):
    out = amc(cws, "run", "configs/fake.toml", "--name", bad, "--detach")
    assert out.returncode == 2 and out.stderr.startswith("amc-tui: error: ")
    assert len(out.stderr.strip().splitlines()) == 1
    assert [p for p in cws.runs.iterdir() if not p.name.startswith(".")] == []


def test_unknown_and_ambiguous_run_refs(cws, cli):
    make_fake_run(cws, "calm-sea-1", run_id="aaaa1111")
    make_fake_run(cws, "calm-sky-2", run_id="aaab2222")
    for cmd in ("show", "tail", "stop", "resume"):
        out = cli(cmd, "calm")
        assert out.returncode == 2 and "ambiguous" in out.stderr and "calm-sea-1" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    out = cli("compare", "zzz", "calm-sea-1")
    assert out.returncode == 2 and "no run matches 'zzz'" in out.stderr


def test_compare_gpus_runlog_queue(cws, cli):
    make_fake_run(cws, "cmp-a-1", seed=1, epochs=3)
    make_fake_run(cws, "cmp-b-2", seed=2, epochs=4, arch="swin_tiny")
    out = cli("compare", "cmp-a", "cmp-b")
    assert out.returncode == 0 and "model.arch: 'resnet18' -> 'swin_tiny'" in out.stdout
    assert "val.acc_combined" in out.stdout and "cells that changed most" in out.stdout
    data = json.loads(cli("compare", "cmp-a", "cmp-b", "--json").stdout)
    assert len(data["top_cells"]) == 5 and data["metrics"]
    gp = cli("gpus")
    assert gp.returncode == 0 and gp.stdout.strip()
    assert "ok" in json.loads(cli("gpus", "--json").stdout)
    sync = cli("runlog", "sync")
    assert sync.returncode == 0 and "updated 2 entries" in sync.stdout
    assert "is current" in cli("runlog", "sync").stdout
    assert cli("queue", "--once").returncode == 0


def test_queue_command_works_the_queue_until_empty(cws):
    for n, epochs in (("q-one", 15), ("q-two", 3)):
        out = amc(
            cws,
            "run",
            "configs/fake.toml",
            "--name",
            n,
            "--detach",
            "--set",
            f"train.epochs={epochs}",
        )
        assert out.returncode == 0
    assert read_run(cws.runs / "q-two").state == "queued"
    out = amc(cws, "queue")
    assert out.returncode == 0 and "started q-two" in out.stdout and "queue empty" in out.stdout
    assert read_run(cws.runs / "q-two").state == "completed"


def test_ls_empty_and_default_text(cws, cli):
    assert "no runs" in cli("ls").stdout
    make_fake_run(cws, "t-x-1")
    out = cli("ls")
    assert (
        out.stdout.splitlines()[0].split()[:3] == ["NAME", "ID", "STATE"] and "t-x-1" in out.stdout
    )
