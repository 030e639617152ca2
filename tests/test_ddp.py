"""Several training processes on one machine (DDP through torchrun, gloo on the CPU).

Real trainer processes on the tiny config: a 2-process run whose final export equals a
1-process evaluation of its best.pt cell for cell; SIGTERM to torchrun mid-epoch stops both
ranks at one step with one checkpoint, and a 1-process resume goes on with the epoch count.
Through the launcher (this process's queue passes): a kill -9 of rank 1 takes the run to
`crashed` (torchrun's exit) and restart = "on-failure" resumes it on 2 processes, where a NaN
on rank 1 alone fails the run naming rank 1 and the step, and it is not restarted again.
Plus the pure parts: config keys, the launch command, GPU placement, which process is which
and how the frames are split."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from runs_fixtures import make_fake_run, runs_workspace
from runs_fixtures import wait_for as until
from train_fixtures import (
    REPO,
    TINY,
    TINY_CLASSES,
    TINY_FPC,
    TINY_SNR,
    events,
    log_text,
    make_data,
    make_run,
    pause_at,
    wait_paused,
)

from amc_tui.config import Config, ConfigError, from_dict
from amc_tui.contract import PER_CELL_FILE
from amc_tui.gpu import GpuSnapshot, GpuStat
from amc_tui.launch.queue import _placement, _Slots, launch, work_queue
from amc_tui.launch.supervise import START_MARKER, read_live
from amc_tui.launch.torchrun import trainer_argv, world_size
from amc_tui.run import runlock
from amc_tui.run.rundir import RunDir, list_runs, read_run, read_status, write_status
from amc_tui.run.runlock import pid_alive
from amc_tui.workspace import Workspace

CPU = 'device = "cpu"\n'  # appended to the tiny config's [run] table
TIMEOUT_S = 240


# --------------------------------------------------------------------------- helpers


def torchrun(run: RunDir, nproc: int = 2, *args: str) -> subprocess.Popen[bytes]:
    """The trainer group as the launcher starts it: torchrun in its own session, train.log."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    argv = trainer_argv(run.path, "amc_tui.train", nproc, "--resume" in args)
    with open(run.log, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)  # fmt: skip


def wait_for(pred, proc: subprocess.Popen[bytes], timeout: float = TIMEOUT_S):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the trainer group ended early (exit {proc.returncode})")
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def finish(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT_S) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def rank_log(run: RunDir, rank: int) -> str:
    path = run.path / f"train.rank{rank}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def one_process_eval(
    run: RunDir, ws: Path
) -> tuple[dict[tuple[str, int], list[int]], int, dict[tuple[int, str, str], int]]:
    """{(modulation, snr): [n, mod ok, snr ok, both ok]} of best.pt on the test split, from
    the trainer's own evaluate() in this one process, and the test split's size."""
    import torch

    from amc_tui.config import load_config, with_data_path
    from amc_tui.data.source import load_dataset
    from amc_tui.train import checkpoint as ckpt
    from amc_tui.train.build import build
    from amc_tui.train.evaluate import evaluate

    torch.set_num_threads(1)
    cfg = with_data_path(load_config(run.config), ws)
    ds = load_dataset(cfg.data)
    n_mod, n_snr = len(ds.classes), len(ds.snrs)
    built = build(cfg, torch.device("cpu"), n_mod, n_snr)
    state = ckpt.load(run.best_ckpt)
    built.model.load_state_dict(state["model"])
    built.weighting.load_state_dict(state["weighting"])
    summary = evaluate(built, ds.test, n_mod, n_snr, cfg.train.batch_size * 2)
    assert summary is not None
    cells = {}
    for i, name in enumerate(ds.classes):
        for j, snr in enumerate(ds.snrs):
            cells[(name, int(snr))] = [int(v) for v in summary.cells[i, j, :4]]
    conf = {
        (int(ds.snrs[j]), ds.classes[t], ds.classes[p]): int(c)
        for (j, t, p), c in np.ndenumerate(summary.conf_mod_snr)
        if c
    }
    return cells, len(ds.test), conf


def export_cells(path: Path) -> dict[tuple[str, int], list[int]]:
    """The same counts read back from per_cell.csv (shares x n)."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["n"])
            ok = [round(float(row[k]) * n) for k in ("acc_mod", "acc_snr", "acc_combined")]
            out[(row["modulation"], int(row["snr_db"]))] = [n, *ok]
    return out


# --------------------------------------------------------------------------- real processes


def test_two_processes_complete_and_export_equals_one_process_eval(tmp_path):
    data = make_data(tmp_path / "data" / "tiny.h5")
    run = make_run(tmp_path, "ddp-run-1", data, epochs=2, extra=CPU)
    assert finish(torchrun(run)) == 0, log_text(run)

    status = read_status(run)
    assert status["state"] == "completed" and status["exit_code"] == 0
    kinds = [e["kind"] for e in events(run)]
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2]
    lines = run.events.read_text().splitlines()
    assert len(lines) == len(set(lines)), "an event line was written twice"
    start = events(run, "start")[0]
    assert start["world_size"] == 2 and start["global_batch"] == 2 * 32
    # 1,144 training frames in global batches of 64: 17 steps, each rank 32 frames a step
    assert start["steps_per_epoch"] == 17 and status["step"] == 34
    # each rank's output in its own log: train.log holds rank 0's alone
    assert log_text(run).count("completed (exit 0)") == 1 and "rank 1 of 2" not in log_text(run)
    assert "completed (exit 0)" in rank_log(run, 1)
    assert not (run.path / "train.rank0.log").exists()

    mine, n_test, conf = one_process_eval(run, tmp_path)
    theirs = export_cells(run.final_export / PER_CELL_FILE)
    assert theirs == mine
    with open(run.final_export / "confusion_mod_by_snr.csv", newline="") as f:
        long = {(int(r["snr_db"]), r["true"], r["pred"]): int(r["count"])
                for r in csv.DictReader(f)}  # fmt: skip
    assert long == conf  # the per-SNR confusion summed over the ranks, each frame once
    assert sum(v[0] for v in theirs.values()) == n_test == start["n_test"]
    # each validation frame counted once (each rank its stride, the counters summed)
    n_snr = (TINY_SNR[1] - TINY_SNR[0]) // 2 + 1
    assert start["n_train"] + start["n_val"] + n_test == len(TINY_CLASSES) * n_snr * TINY_FPC
    for epoch in (1, 2):
        val = export_cells(run.epoch_export(epoch) / PER_CELL_FILE)
        assert sum(v[0] for v in val.values()) == start["n_val"] > 0


def test_sigterm_stops_both_ranks_at_one_step_and_one_process_resumes(tmp_path):
    data = make_data(tmp_path / "data" / "tiny.h5")
    run = make_run(tmp_path, "ddp-stop-1", data, epochs=2, extra=CPU)
    text = run.config.read_text()  # 30 steps of 2 x 8 frames: room to stop mid-epoch
    run.config.write_text(
        text.replace("batch_size = 32", "batch_size = 8\nmax_steps_per_epoch = 30")
    )
    pause_at(run, 35)  # rank 0 waits there (rank 1 at the next collective) for the SIGTERM
    proc = torchrun(run)
    wait_paused(run, 35, proc.pid, TIMEOUT_S)
    os.kill(proc.pid, signal.SIGTERM)  # torchrun forwards it to both ranks
    finish(proc)

    status = read_status(run)
    assert status["state"] == "stopped" and status["exit_code"] == 0, log_text(run)
    assert status["epoch"] == 1 and status["step"] == 35  # in the middle of epoch 2
    stops = [re.findall(r"stop at step (\d+): agreed", text) for text in
             (log_text(run), rank_log(run, 1))]  # fmt: skip
    assert stops[0] == stops[1] == [str(status["step"])]
    after_epoch = [e for e in events(run, "checkpoint") if e["t"] > events(run, "epoch")[-1]["t"]]
    assert len(after_epoch) == 1 and after_epoch[0]["path"].endswith("last.pt")
    assert [e["state"] for e in events(run, "end")] == ["stopped"]

    resumed = subprocess.run(
        [sys.executable, "-m", "amc_tui.train", "--run-dir", str(run.path), "--resume"],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "epoch 2 restarts from its first batch" in resumed.stdout
    starts = events(run, "start")
    assert [(s["world_size"], s["resumed"], s["epoch"]) for s in starts] == [
        (2, False, 0),
        (1, True, 1),
    ]
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2]
    assert read_status(run)["state"] == "completed"


# --------------------------------------------------------------------------- through the launcher

# The tiny config on 2 CPU processes, restarted once when it crashes.
DDP_RUN = 'device = "cpu"\nnproc = 2\nrestart = "on-failure"\nmax_restarts = 1\n'

# The real trainer, except that the first attempt's rank 0 pauses after step 18 (epoch 2's
# first; rank 1 then waits at the next collective) until torchrun stops it, and in a resumed
# attempt rank 1's third training batch reaches the model as NaN images: a non-finite loss on
# that rank alone (the weights are the same on every rank, and the renderer maps non-finite
# I/Q samples to finite images, so no data file can do this).
NAN_ON_RANK_1 = """
import os
import sys

import torch

from amc_tui.train.build import Built
from amc_tui.train.owner import main

if "--resume" not in sys.argv:  # before the ranks join: rank 0 finds it at its start
    run_dir = sys.argv[sys.argv.index("--run-dir") + 1]
    with open(os.path.join(run_dir, "pause-at-step"), "w") as f:
        f.write("18")

real_step = Built.train_step
calls = 0


def train_step(self, x, mod, snr):
    global calls
    calls += 1
    if os.environ.get("RANK") == "1" and "--resume" in sys.argv and calls == 3:
        x = torch.full_like(x, float("nan"))
    return real_step(self, x, mod, snr)


Built.train_step = train_step
sys.exit(main())
"""


@pytest.fixture
def ddp_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A workspace with configs/ddp.toml (tiny config, 2 epochs, DDP_RUN); trainers are
    started and reaped by this process's queue passes, no detached worker."""
    for sub in ("configs", "runs", "data"):
        (tmp_path / sub).mkdir()
    make_data(tmp_path / "data" / "tiny.h5")
    text = TINY.format(name="", data="data/tiny.h5", epochs=2) + DDP_RUN
    (tmp_path / "configs" / "ddp.toml").write_text(text)
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("AMC_TUI_TRAINER_MODULE", raising=False)
    ws = Workspace(tmp_path)
    yield ws
    for info in list_runs(ws, with_last_epoch=False):  # a failed test leaves no trainer behind
        pid = read_live(ws, info.dir).pid
        if pid and pid_alive(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # torchrun's group; the ranks die with it


def reaped(pid: int) -> bool:
    """Trainer `pid` (torchrun) has ended and the launcher's thread that waited for it has
    recorded what it had to and is gone."""
    return not pid_alive(pid) and not any(
        t.name == f"amc-wait-{pid}" for t in threading.enumerate()
    )


def rank_pids(run: RunDir) -> dict[int, int] | None:
    """{rank: pid} of the current attempt's 2 processes once both have joined the group."""
    text = log_text(run).rsplit(START_MARKER, 1)[-1] + rank_log(run, 1)[-4000:]
    found = {int(r): int(p) for r, p in re.findall(r"rank (\d) of 2 .*pid (\d+)", text)}
    return found if len(found) == 2 else None


def test_a_killed_rank_crashes_the_run_restart_resumes_it_and_a_nan_on_rank_1_fails_it(
    ddp_ws, tmp_path, monkeypatch
):
    """One run, two faults (each attempt costs three processes importing torch): kill -9 of
    rank 1 -> `crashed` (torchrun's exit) -> restart = "on-failure" resumes it on 2
    processes; there rank 1 alone gets a NaN loss -> `failed` naming rank 1, not restarted."""
    (tmp_path / "nan_rank1_trainer.py").write_text(NAN_ON_RANK_1)
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "nan_rank1_trainer")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{REPO}")
    info = launch(ddp_ws, "configs/ddp.toml", name="kill-1", detach=False)
    run = RunDir(info.dir)
    first = info.pid
    assert first and info.state == "running"
    pids = until(lambda: rank_pids(run), TIMEOUT_S)
    assert read_status(run)["pid"] == read_status(run)["pgid"] == first  # rank 0 names torchrun
    # in the middle of epoch 2 (last.pt holds epoch 1): kill -9 rank 1 alone
    wait_paused(run, 18, first, TIMEOUT_S)
    os.kill(pids[1], signal.SIGKILL)
    until(lambda: reaped(first), TIMEOUT_S)

    # torchrun's exit: crashed, recorded by the launcher, then queued again with --resume
    ends = events(run, "end")
    assert [(e["state"], e.get("recorded_by")) for e in ends] == [("crashed", "launcher")]
    assert ends[0]["exit_code"] not in (0, None)
    status = read_status(run)
    assert status["state"] == "queued" and status["resume"] is True and status["restarts"] == 1
    assert status["error"].startswith(f"trainer process {first} exited with code ")
    assert "leaving the run to the launcher" in log_text(run)
    restart = events(run, "restart")
    assert len(restart) == 1 and restart[0]["attempt"] == 1 and restart[0]["reason"] == "crashed"
    assert restart[0]["from_epoch"] == 1 and restart[0]["checkpoint"] == str(run.last_ckpt)
    # nothing of the first attempt is left, only its lock file: it must not block the restart
    assert not any(pid_alive(p) for p in (first, *pids.values()))
    assert (run.path / runlock.LOCK_FILE).exists() and runlock.holder(run.path) is None
    saved_step = ckpt_step(run)

    again = work_queue(ddp_ws)  # the next queue pass
    assert [r.name for r in again] == ["kill-1"] and again[0].pid not in (None, first)
    until(lambda: reaped(again[0].pid), TIMEOUT_S)

    starts = events(run, "start")
    assert [(s["world_size"], s["resumed"], s["epoch"]) for s in starts] == [
        (2, False, 0),
        (2, True, 1),
    ]
    status = read_status(run)
    step = starts[1]["step"] + 3  # the resumed attempt's third batch
    said = f"non-finite modulation and SNR loss (NaN or inf) on rank 1 at step {step} (epoch 2)"
    assert status["state"] == "failed" and status["exit_code"] == 1, log_text(run)[-3000:]
    assert status["error"].startswith(said) and status["step"] == step
    # a failure is the run's own verdict: the launcher neither calls it crashed nor restarts
    assert read_run(run.path).state == "failed" and read_run(run.path).restarts == 1
    assert len(events(run, "restart")) == 1
    ends = events(run, "end")
    assert [e["state"] for e in ends] == ["crashed", "failed"] and "recorded_by" not in ends[1]
    assert ends[1]["error"] == status["error"]
    lines = run.events.read_text().splitlines()
    assert len(lines) == len(set(lines)), "an event line was written twice"
    assert f"error: {status['error']}" in log_text(run)  # rank 0's train.log
    assert said in rank_log(run, 1) and "failed (exit 1)" in rank_log(run, 1)
    assert "on rank 0" not in log_text(run) + rank_log(run, 1)
    assert ckpt_step(run) == saved_step  # never a diverged state as a checkpoint


def ckpt_step(run: RunDir) -> int:
    import torch

    return int(torch.load(run.last_ckpt, map_location="cpu", weights_only=True)["step"])


# --------------------------------------------------------------------------- config, launch


def cfg_with(**run: object) -> Config:
    return from_dict({"run": run})


def test_config_nproc_and_lr_scale():
    assert Config().run.nproc == 1 and Config().train.lr_scale == "none"
    assert cfg_with(nproc=4, device="cpu").run.nproc == 4
    assert from_dict({"train": {"lr_scale": "linear"}}).train.lr_scale == "linear"
    with pytest.raises(ConfigError, match=r"lr_scale must be \"none\" or \"linear\""):
        from_dict({"train": {"lr_scale": "sqrt"}})
    with pytest.raises(ConfigError, match=r"nproc must be in 1\.\.256, got 0"):
        cfg_with(nproc=0)
    with pytest.raises(ConfigError, match="nproc = 3 but gpus lists 2 GPUs"):
        cfg_with(nproc=3, gpus=[0, 1])
    with pytest.raises(ConfigError, match="device = 'cuda:1' pins one"):
        cfg_with(nproc=2, device="cuda:1")
    with pytest.raises(ConfigError, match="lists a GPU twice"):
        cfg_with(gpus=[1, 1])
    assert cfg_with(nproc=2, gpus=[2, 3]).run.gpus == [2, 3]


def test_launch_command_and_world_size():
    one = trainer_argv("/r/x", "amc_tui.train", 1, False, python="py")
    assert one == ["py", "-m", "amc_tui.train", "--run-dir", "/r/x"]
    four = trainer_argv("/r/x", "amc_tui.train", 4, True, python="py")
    assert four == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
                    "--max-restarts", "0", "-m", "amc_tui.train", "--run-dir", "/r/x",
                    "--resume"]  # fmt: skip
    assert world_size(cfg_with(gpus=[0, 1, 2, 3]), "cuda", [0, 1, 2, 3]) == 4
    assert world_size(cfg_with(nproc=2, device="cpu"), "cpu", []) == 2
    assert world_size(cfg_with(), "cuda", [1]) == 1


def snap(n: int) -> GpuSnapshot:
    return GpuSnapshot(ok=True, gpus=[GpuStat(i, mem_used_mb=10.0) for i in range(n)])


def test_queue_places_a_ddp_run_only_when_all_its_gpus_are_free():
    cfg = cfg_with(nproc=2, device="cuda")

    def place(busy: set[int]) -> tuple[str, list[int]] | None:
        return _placement(cfg, _Slots(False, busy, False), lambda: snap(4))

    assert place(set()) == ("cuda", [0, 1])
    assert place({0}) == ("cuda", [1, 2])
    assert place({0, 1, 2}) is None
    listed = cfg_with(gpus=[1, 3], device="cuda")
    assert _placement(listed, _Slots(False, {3}, False), lambda: snap(4)) is None
    assert _placement(listed, _Slots(False, {0}, False), lambda: snap(4)) == ("cuda", [1, 3])


def test_ls_and_show_name_the_gpus_a_run_holds(tmp_path, capsys):
    from amc_tui.cli import main

    ws = runs_workspace(tmp_path)
    make_fake_run(ws, "plain-run-1", seed=1)
    run = make_fake_run(ws, "wide-run-2", seed=2)
    write_status(run, gpus=[0, 1, 2, 3], device="cuda:0")
    assert main(["--workspace", str(tmp_path), "ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["NAME", "ID", "STATE", "GPUS"]
    assert "0,1,2,3" in next(line for line in out if "wide-run-2" in line)
    assert " - " in next(line for line in out if "plain-run-1" in line)
    assert main(["--workspace", str(tmp_path), "show", "wide-run-2"]) == 0
    assert "device cuda:0 GPU 0,1,2,3" in capsys.readouterr().out


# --------------------------------------------------------------------------- who, what data


def test_place_from_torchrun_and_srun_environments():
    from amc_tui.train.place import Place, env_is_main, env_place, first_host

    torchrun_env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                    "TORCHELASTIC_RUN_ID": "x"}  # fmt: skip
    assert env_place(torchrun_env) == Place(3, 1, 4, 2, "torchrun")
    srun = {"SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_NTASKS": "2"}  # fmt: skip
    assert env_place(srun) == Place(1, 1, 2, 2, "srun")
    older = {"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "0"}
    assert env_place(older) == Place(2, 0, 4, 4, "srun")
    batch_script = {"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}  # not a step: one process
    assert env_place(batch_script) == Place() and env_is_main(batch_script)
    assert not env_is_main(torchrun_env) and env_is_main({})
    assert first_host("gpu-a[07-09,12],gpu-b3") == "gpu-a07"
    assert first_host("n1,n2") == "n1" and first_host("solo") == "solo"


def test_train_shards_cover_each_frame_once_and_keep_one_process_batches():
    from amc_tui.train.dist import Dist
    from amc_tui.train.feed import plan_batches
    from amc_tui.train.place import Place

    order = np.random.default_rng(0).permutation(1000)
    single = Dist(Place()).plan_train(order, 32, 0)
    assert [list(b) for b in single] == [list(b) for b in plan_batches(order, 32, True)]
    shards = [Dist(Place(r, r, 3, 3)).plan_train(order, 32, 0) for r in range(3)]
    assert {len(s) for s in shards} == {1000 // 96}  # the same steps on every rank
    seen = np.concatenate([b for s in shards for b in s])
    assert len(seen) == len(set(seen.tolist())) == (1000 // 96) * 96
    assert set(seen.tolist()) == set(order[: (1000 // 96) * 96].tolist())
    evals = [Dist(Place(r, r, 3, 3)) for r in range(3)]
    parts = [d.shard(np.arange(10)) for d in evals]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert max(len(plan_batches(p, 2, False)) for p in parts) == evals[0].eval_steps(10, 2)
