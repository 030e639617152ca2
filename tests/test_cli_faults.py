"""Clear ends from the CLI, with real processes: a split that cannot train is refused before a
run folder exists, a just-started trainer shows its pid, and `show` names the cause of a
failure or crash (not the last line of train.log) and never a best epoch whose best.pt is gone."""

from __future__ import annotations

import json
import os

import pytest
from runs_fixtures import amc, fake_trainer_workspace, kill_running, make_fake_run, wait_for

from amc_tui import report
from amc_tui.data.synth import synthesize
from amc_tui.run.rundir import read_run, read_status
from amc_tui.run.runlock import pid_alive

CFG = "configs/fake.toml"


@pytest.fixture
def cws(tmp_path, monkeypatch):
    ws = fake_trainer_workspace(tmp_path, monkeypatch, epoch_s=0.15, epochs=3, stop_grace_s=10.0)
    yield ws
    kill_running(ws)


def test_an_empty_split_is_refused_before_a_run_folder_exists(cws):
    synthesize(cws.root / "data" / "tiny.h5", classes=["BPSK", "QPSK"], frames_per_cell=3,
               snr_min=0, snr_max=2)  # fmt: skip
    for args in (("-d",), ()):  # detached and followed
        out = amc(cws, "run", CFG, "--set", 'data.path="data/tiny.h5"', *args)
        assert out.returncode == 2, out.stdout + out.stderr
        line = out.stderr.strip()
        assert "\n" not in line and "validation split with 0 frames" in line
        assert "3 frames per (class, SNR) cell" in line
    assert [p.name for p in cws.runs.iterdir()] in ([], [".amc-tui"])
    leftovers = list(cws.state_dir.glob("new-*")) if cws.state_dir.exists() else []
    assert leftovers == [] and not (cws.state_dir / "counter").exists()
    ok = amc(cws, "run", CFG, "-d")  # the 10-frame file of the same config is fine
    assert ok.returncode == 0, ok.stderr


SILENT_TRAINER = """
import os, sys, time
run = sys.argv[sys.argv.index("--run-dir") + 1]
while not os.path.exists(os.path.join(run, "go")):
    time.sleep(0.02)
"""


def test_ls_and_show_find_a_trainer_before_its_first_status_write(cws, tmp_path, monkeypatch):
    (tmp_path / "silent_trainer.py").write_text(SILENT_TRAINER)
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "silent_trainer")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}")
    out = amc(cws, "run", CFG, "-d", "--name", "quiet")
    assert out.returncode == 0 and out.stdout.split()[2] == "running"
    assert read_status(read_run(cws.runs / "quiet").rundir).get("pid") is None
    pid = json.loads((cws.state_dir / "trainers" / "quiet.json").read_text())["pid"]
    assert pid_alive(pid)
    show = amc(cws, "show", "quiet")
    assert f"pid {pid}" in show.stdout and "running" in show.stdout.splitlines()[0]
    assert f'"pid": {pid}' in amc(cws, "ls", "--json").stdout
    (cws.runs / "quiet" / "go").write_text("")


CRASHING_TRAINER = """
import atexit, os, sys, time
run = sys.argv[sys.argv.index("--run-dir") + 1]
atexit.register(lambda: print("flushing 3 open files", flush=True))
print("loading data", flush=True)
raise ValueError("frames_per_cell 0 selects nothing")
"""


def test_show_names_the_exception_of_a_trainer_that_died_without_an_end_state(
    cws, tmp_path, monkeypatch
):
    (tmp_path / "crashing_trainer.py").write_text(CRASHING_TRAINER)
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "crashing_trainer")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}")
    out = amc(cws, "run", CFG, "--name", "broken")  # followed: it records the end itself
    assert out.returncode == 1, out.stdout + out.stderr
    info = read_run(cws.runs / "broken")
    assert info.state == "crashed" and "flushing 3 open files" in info.error
    expected = "ValueError: frames_per_cell 0 selects nothing"
    assert f"  error: {expected}" in out.stdout  # the summary
    show = amc(cws, "show", "broken")
    assert f"  error: {expected}\n" in show.stdout


def test_show_names_a_kill_not_the_log_and_a_crash_nobody_recorded(cws):
    out = amc(cws, "run", CFG, "-d", "--name", "killed", FAKE_HOLD_AFTER="1")
    assert out.returncode == 0
    log = cws.runs / "killed" / "train.log"
    wait_for(lambda: "holding" in log.read_text().split())  # after epoch 1, till the kill
    info = read_run(cws.runs / "killed")
    os.killpg(info.pgid, 9)
    wait_for(lambda: not pid_alive(info.pid))
    assert amc(cws, "queue", "--once").returncode == 0  # a worker pass records the crash
    assert read_status(info.rundir)["state"] == "crashed"
    error = read_run(info.dir).error.splitlines()
    assert len(error) > 2 and error[-2].startswith("epoch 1/")  # the tail of train.log
    assert error[-1] == "holding"
    show = amc(cws, "show", "killed")
    line = f"  error: trainer process {info.pid} is gone without recording an end state\n"
    assert line in show.stdout, show.stdout

    run = make_fake_run(cws, "silent-crash-1", state="crashed", heartbeat_at=1_750_000_300.0)
    show = amc(cws, "show", "silent-crash-1")
    beat = report.clock(1_750_000_300.0)
    assert f"  error: trainer process 999999999 is gone, last heartbeat {beat}\n" in show.stdout
    assert read_run(run.path).state == "crashed"


def test_show_never_claims_a_best_epoch_whose_checkpoint_is_gone(cws):
    run = make_fake_run(cws, "best-1", state="completed", epochs=4)
    best = read_run(run.path).best
    run.best_ckpt.write_bytes(b"fake")
    head = amc(cws, "show", "best-1").stdout.splitlines()[0]
    assert head.endswith(f"best {report.best(best)}") and f"@{best['epoch']}" in head
    run.best_ckpt.unlink()
    out = amc(cws, "show", "best-1").stdout
    assert out.splitlines()[0].endswith("(best.pt missing)") and "@" not in out.splitlines()[0]
    assert not any(ln.split()[:2] == [str(best["epoch"]), "*"] for ln in out.splitlines())
