"""What a trainer leaves when it is killed or its disk fills: time-based mid-epoch
checkpoints bound a kill -9's loss, a resume takes the newest readable state (or says exactly
why none can be used), and a full disk ends the run `failed` with one line naming the file
while the previous checkpoint stays whole. Real trainer processes on the tiny config."""

from __future__ import annotations

import errno
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch
from train_fixtures import (
    TINY,
    copy_run,
    events,
    kill_group,
    log_text,
    make_run,
    run_trainer,
    start_trainer,
    stopped,
    tiny_data,
    wait_paused,
)

from amc_tui.run.rundir import RunDir, read_status
from amc_tui.train import checkpoint as ckpt

# 60 ns, shorter than any step: every step's checkpoint check is due (deterministically)
EVERY_STEP = "checkpoint_minutes = 1e-9\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A 2-epoch run stopped (SIGTERM) in epoch 2's first step: best.pt of epoch 1, last.pt."""
    run = stopped(tmp_path_factory).run
    assert stopped(tmp_path_factory).code == 0, log_text(run)[-3000:]
    assert run.best_ckpt.is_file() and run.last_ckpt.is_file()
    return run


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# --------------------------------------------------------------------------- kill -9


def test_kill9_loses_at_most_one_checkpoint_interval(tmp_path: Path, data: Path) -> None:
    """The trainer checkpoints after every step (EVERY_STEP) and pauses right after step 11
    (epoch 2, batch 3), before that step's checkpoint: a kill -9 there loses exactly the steps
    since the last timed checkpoint (step 11), and the resume continues from the mid-epoch
    checkpoint of step 10. The pause, not the trainer's pace, decides the moment."""
    config = TINY.format(name="killed-1", data=data, epochs=3)  # 8 steps an epoch
    config = config.replace("[train]\n", "[train]\nmax_steps_per_epoch = 8\n")
    config = config.replace("step_log_every = 5\n", "step_log_every = 1\n")
    run = make_run(tmp_path, "killed-1", data, config=config, extra=EVERY_STEP)
    pause = 8 + 3
    proc = start_trainer(run, pause=pause)
    try:
        wait_paused(run, pause, proc.pid)  # paused: last.pt cannot change any more
        saved = ckpt.load(run.last_ckpt)
    finally:
        kill_group(proc.pid)
        proc.wait(timeout=60)
    at_kill = [e["step"] for e in events(run, "step")]
    assert at_kill == list(range(1, pause + 1))
    # the checkpoint of the step before: a mid-epoch state (epoch 1 done, 2 batches into 2)
    assert (saved["epoch"], saved["step"], saved["batch_in_epoch"]) == (1, pause - 1, 2)
    last = [(c["step"], c["batch"]) for c in events(run, "checkpoint") if not c["best"]]
    # a timed one every step (batch > 0), and the one of the epoch's end (batch 0)
    assert last == [(s, s) for s in range(1, 9)] + [(8, 0), (9, 1), (10, 2)]
    assert run_trainer(run, "--resume") == 0, log_text(run)[-3000:]
    starts = events(run, "start")
    assert [s["resumed"] for s in starts] == [False, True]
    assert (starts[1]["epoch"], starts[1]["step"]) == (saved["epoch"], saved["step"])
    assert (
        f"resumed from {run.last_ckpt}: epoch {saved['epoch']} done, step {saved['step']}, "
        f"batch {saved['batch_in_epoch']} of epoch {saved['epoch'] + 1}"
    ) in log_text(run)
    steps = [e["step"] for e in events(run, "step")]
    after = steps[len(at_kill) :]
    assert after == list(range(saved["step"] + 1, 3 * 8 + 1))  # on from the checkpoint
    repeated = [s for s, n in Counter(steps).items() if n > 1]
    # only the steps between the last checkpoint and the kill were trained twice
    assert repeated == list(range(saved["step"] + 1, max(at_kill) + 1)) == [pause]
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2, 3]
    assert read_status(run)["state"] == "completed"
    for c in events(run, "checkpoint"):
        assert c["seconds"] > 0 and c["bytes"] > 0
    final = events(run, "checkpoint")[-1]
    assert final["bytes"] == Path(final["path"]).stat().st_size


# --------------------------------------------------------------------------- resume choice


def test_resume_takes_best_when_last_is_truncated(stopped_run: RunDir, tmp_path: Path) -> None:
    run = copy_run(stopped_run, tmp_path)
    best = ckpt.load(run.best_ckpt)
    assert best["epoch"] == 1 and best["batch_in_epoch"] == 0
    truncate(run.last_ckpt)  # a write that a broken rename left half done
    assert run_trainer(run, "--resume") == 0, log_text(run)[-3000:]
    log = log_text(run)
    assert f"resume: skipped last.pt: cannot read checkpoint {run.last_ckpt}: corrupt" in log
    assert f"resumed from {run.best_ckpt}: epoch 1 done, step {best['step']}, batch 0" in log
    start = events(run, "start")[-1]
    assert start["resumed"] and (start["epoch"], start["step"]) == (1, best["step"])
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2]
    assert read_status(run)["state"] == "completed"


def test_resume_without_a_readable_checkpoint_names_each_file(
    stopped_run: RunDir, tmp_path: Path
) -> None:
    run = copy_run(stopped_run, tmp_path)
    truncate(run.last_ckpt)
    run.best_ckpt.write_bytes(b"not a checkpoint at all" * 10)
    assert run_trainer(run, "--resume") == 2
    error = read_status(run)["error"]
    assert "\n" not in error and error.startswith(
        f"cannot resume run stopped-1: no usable checkpoint in {run.checkpoints} (best.pt: "
        f"cannot read checkpoint {run.best_ckpt}: "
    )
    assert f"; last.pt: cannot read checkpoint {run.last_ckpt}: corrupt or truncated" in error
    assert error in log_text(run)


# --------------------------------------------------------------------------- full disk


def _mount_tmpfs(folder: Path, size: int) -> str | None:
    """Mount a `size`-byte tmpfs on `folder`; None, or why it cannot be done here."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"mount failed: {e}"
    return None if p.returncode == 0 else f"mount -t tmpfs failed: {p.stderr.strip()}"


def _umount(folder: Path) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_fails_naming_the_file_and_keeps_the_previous_one(
    stopped_run: RunDir, tmp_path: Path, data: Path
) -> None:
    size = stopped_run.last_ckpt.stat().st_size
    # a: room for one mid-epoch last.pt, not for the temp file of the next one
    a = make_run(tmp_path, "full-last-1", data, extra=EVERY_STEP)
    # b: no room for best.pt of epoch 1 (per-epoch checkpoints only)
    short = TINY.format(name="full-best-1", data=data, epochs=2)  # 4 steps to best.pt
    short = short.replace("[train]\n", "[train]\nmax_steps_per_epoch = 4\n")
    b = make_run(tmp_path, "full-best-1", data, config=short, extra="checkpoint_minutes = 0\n")
    mounted: list[Path] = []
    try:
        for run, room in ((a, size * 3 // 2), (b, size // 2)):
            why = _mount_tmpfs(run.checkpoints, room)
            if why:
                pytest.skip(why)
            mounted.append(run.checkpoints)
        procs = [start_trainer(a), start_trainer(b)]
        codes = [p.wait(timeout=300) for p in procs]
        assert codes == [1, 1], log_text(a)[-2000:] + log_text(b)[-2000:]
        for run, name in ((a, "last.pt"), (b, "best.pt")):
            st = read_status(run)
            assert st["state"] == "failed" and st["exit_code"] == 1
            assert st["error"].startswith(
                f"no space left on device writing {run.checkpoints / name} ("
            ) and st["error"].endswith(" free)"), st["error"]
            assert f"error: {st['error']}" in log_text(run) and "Traceback" not in log_text(run)
            assert events(run)[-1]["kind"] == "end" and events(run)[-1]["error"] == st["error"]
            assert not [p.name for p in run.checkpoints.iterdir() if p.name.endswith(".tmp")]
            assert st["best"] is None  # no epoch ended with its best.pt written
        first = [c for c in events(a, "checkpoint") if not c["best"]][-1]
        kept = ckpt.load(a.last_ckpt)  # the previous last.pt is whole
        assert kept["step"] == first["step"] and kept["batch_in_epoch"] > 0
        assert not b.best_ckpt.exists() and events(b, "epoch") == []
    finally:
        for folder in mounted:
            _umount(folder)


def test_disk_full_errors_become_one_line_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "checkpoints" / "last.pt"
    ckpt.save(target, {"a": torch.arange(3)})
    errors = [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 4672 vs 4608"),
    ]
    for exc in errors:

        def full(obj, f, exc=exc):
            f.write(b"partial")
            raise exc

        monkeypatch.setattr(ckpt.torch, "save", full)
        with pytest.raises(ckpt.DiskFull) as info:
            ckpt.save(target, {"a": torch.arange(4)})
        text = str(info.value)
        assert text.startswith(f"no space left on device writing {target} (") and "\n" not in text
        assert text.endswith(" free)")
        assert [p.name for p in target.parent.iterdir()] == ["last.pt"]  # temp file removed
        assert torch.equal(ckpt.load(target)["a"], torch.arange(3))  # the old one intact

    def other(obj, f):
        raise RuntimeError("something else")

    monkeypatch.setattr(ckpt.torch, "save", other)
    with pytest.raises(RuntimeError, match="something else"):
        ckpt.save(target, {"a": torch.arange(4)})
