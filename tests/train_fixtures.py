"""Helpers for trainer tests: tiny synthetic files, run directories, real trainer processes.

Import explicitly: `from train_fixtures import TINY, make_run, run_trainer, tiny, ...`;
`write_tiny_workspace` sets up a workspace for trainers started by the launcher or the TUI.
The trained tiny run and a copy of it stopped after epoch 1 are made once per test session
(cached here, since pytest would create one session fixture per importing module) and shared
read-only by the tests that inspect them; tests that resume one work on a copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amc_tui.run.rundir import RunDir, read_events, read_status
from amc_tui.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
PAUSE_FILE = "pause-at-step"  # amc_tui.train.loop.PAUSE_FILE (no torch import here)
TINY_CLASSES = ["BPSK", "QPSK", "8PSK", "16QAM"]
TINY_SNR = (0, 20)
TINY_FPC = 32
TINY_STEPS_PER_EPOCH = 35  # 1,144 training frames in batches of 32 (the start event says so)

# The tiny Swin every test trains (41 k parameters on 32 px images: ~1,000 samples/s on one
# core): its backbone_kwargs as a dict and as the TOML inline table the configs below hold.
TINY_SWIN = {"window_size": 4, "embed_dim": 24, "depths": [1, 1], "num_heads": [1, 2]}
TINY_SWIN_TOML = "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in TINY_SWIN.items()) + "}"
_KWARGS = TINY_SWIN_TOML.replace("{", "{{").replace("}", "}}")  # inside a .format() template

TINY = (
    """\
name = "{name}"
[data]
path = "{data}"
classes = ["BPSK", "QPSK", "8PSK", "16QAM"]
snr_min = 0
snr_max = 20
frames_per_cell = 32
[image]
size = 32
range = 1.5
[model]
arch = "swin_tiny"
dropout = 0.1
backbone_kwargs = """
    + _KWARGS
    + """
[train]
epochs = {epochs}
batch_size = 32
lr = 0.002
threads = 1
seed = 0
[run]
step_log_every = 5
"""
)


# The tiny Swin for real trainers launched in a workspace (launcher, TUI): 2 steps per epoch.
# (A resnet18 here wrote 2 x 45 MB of checkpoints per epoch: 4 s more CPU per trainer, and
# seconds of fsync on a slow disk.)
WS_TINY_CLASSES = ["BPSK", "QPSK", "8PSK"]
WS_TINY = (
    """\
[data]
path = "data/tiny.h5"
classes = ["BPSK", "QPSK", "8PSK"]
snr_min = 0
snr_max = 10
frames_per_cell = 8
[image]
size = 32
[model]
arch = "swin_tiny"
backbone_kwargs = """
    + _KWARGS
    + """
[train]
epochs = {epochs}
batch_size = 16
max_steps_per_epoch = 2
threads = 1
[run]
device = "cpu"
{share_device}step_log_every = 1
stop_grace_s = {stop_grace_s}
"""
)


def write_tiny_workspace(
    root: Path, config_name: str, *, epochs: int, stop_grace_s: float, share_device: bool = False
) -> Workspace:
    """A workspace (configs/, runs/, data/) with data/tiny.h5 (3 classes, 0..10 dB, 8 frames
    per cell) and configs/<config_name> = WS_TINY."""
    from amc_tui.data.synth import synthesize

    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    synthesize(root / "data" / "tiny.h5", classes=WS_TINY_CLASSES, frames_per_cell=8,
               snr_min=0, snr_max=10, seed=0)  # fmt: skip
    share = "share_device = true\n" if share_device else ""
    text = WS_TINY.format(epochs=epochs, stop_grace_s=stop_grace_s, share_device=share)
    (root / "configs" / config_name).write_text(text)
    return Workspace(root)


def make_data(path: Path, frames_per_cell: int = TINY_FPC) -> Path:
    from amc_tui.data.synth import synthesize

    if not path.exists():
        synthesize(path, classes=TINY_CLASSES, frames_per_cell=frames_per_cell,
                   snr_min=TINY_SNR[0], snr_max=TINY_SNR[1], seed=0)  # fmt: skip
    return path


def make_run(
    ws: Path, name: str, data: Path, epochs: int = 2, extra: str = "", config: str | None = None
) -> RunDir:
    """A run directory as the launcher makes it: config.toml + meta.json (workspace set)."""
    run = RunDir(ws / "runs" / name)
    run.path.mkdir(parents=True)
    text = config if config is not None else TINY.format(name=name, data=data, epochs=epochs)
    run.config.write_text(text + extra, encoding="utf-8")
    meta = {"id": f"id{name[:6]}", "name": name, "workspace": str(ws), "created_at": time.time()}
    run.meta.write_text(json.dumps(meta), encoding="utf-8")
    return run


def start_trainer(
    run: RunDir, *args: str, pause: int | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The trainer as the launcher starts it: own session, output to train.log; `pause`: it
    pauses after that step (`pause_at`); `env_extra` is added to its environment."""
    if pause is not None:
        pause_at(run, pause)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env_extra or {})}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    log = open(run.log, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "amc_tui.train", "--run-dir", str(run.path), *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
    finally:
        log.close()


def launch_paused_trainers(monkeypatch: pytest.MonkeyPatch, pauses: str) -> None:
    """Runs the launcher starts use the real trainer under tests/pausing_trainer.py, which
    pauses each run as `pauses` says ("name:step,...", "*" for every run) until released."""
    monkeypatch.setenv("AMC_TUI_TRAINER_MODULE", "pausing_trainer")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "tests"), str(REPO)]))
    monkeypatch.setenv("TEST_PAUSE_RUNS", pauses)


def pause_at(run: RunDir, step: int) -> None:
    """The next trainer of `run` (however started) pauses right after step `step`, before that
    step's checkpoint check, and waits there for SIGTERM (the trainer's test hook,
    amc_tui.train.loop.take_pause_step; later trainers of the run do not pause)."""
    (run.path / PAUSE_FILE).write_text(str(step), encoding="utf-8")


def release(run: RunDir, then_at: int | None = None) -> None:
    """The paused trainer of `run` trains on (pausing again after step `then_at`, if given)."""
    if then_at is not None:
        pause_at(run, then_at)
    (run.path / "pause-release").write_text("", encoding="utf-8")  # loop.RELEASE_FILE


def wait_paused(run: RunDir, step: int, pid: int | None = None, timeout: float = 120) -> None:
    """Wait until the trainer of `run` says it paused after step `step` (see `pause_at`);
    AssertionError with train.log's tail when the process `pid` ended first, or at `timeout`.
    From then on it writes nothing but heartbeats until it gets SIGTERM."""
    line = f"paused at step {step} ({PAUSE_FILE})"
    deadline = time.monotonic() + timeout
    while line not in log_text(run):
        assert pid is None or pid_running(pid), f"ended before {line!r}:\n{log_text(run)[-3000:]}"
        assert time.monotonic() < deadline, f"no {line!r} within {timeout} s"
        time.sleep(0.01)


def pid_running(pid: int) -> bool:
    """The process exists and has not ended (a zombie, not yet reaped, has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` leads, if any of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_trainer(
    run: RunDir, *args: str, timeout: float = 120, env_extra: dict[str, str] | None = None
) -> int:
    proc = start_trainer(run, *args, env_extra=env_extra)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def stop_at_step(run: RunDir, step: int, *args: str, timeout: float = 120) -> int:
    """Start the trainer paused after step `step` (`pause_at`) and SIGTERM it there: it ends
    that step, writes last.pt and stops. Its exit code."""
    proc = start_trainer(run, *args, pause=step)
    try:
        wait_paused(run, step, proc.pid, timeout)
        os.kill(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()


def events(run: RunDir, kind: str | None = None) -> list[dict[str, Any]]:
    evs = read_events(run.events) if run.events.exists() else []
    return [e for e in evs if kind is None or e["kind"] == kind]


def log_text(run: RunDir) -> str:
    return run.log.read_text(encoding="utf-8", errors="replace") if run.log.exists() else ""


@dataclass
class TinyRun:
    ws: Path
    data: Path
    run: RunDir
    code: int

    @property
    def status(self) -> dict[str, Any]:
        return read_status(self.run)


_CACHE: dict[str, Any] = {}


def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(workspace, data file) of the shared tiny runs, made once per session."""
    if "data" not in _CACHE:
        ws = tmp_path_factory.mktemp("train_ws")
        _CACHE["ws"], _CACHE["data"] = ws, make_data(ws / "data" / "tiny.h5")
    return _CACHE["ws"], _CACHE["data"]


def _train_shared(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The two shared runs side by side (their start-up is mostly imports)."""
    ws, data = tiny_data(tmp_path_factory)
    run = make_run(ws, "tiny-run-1", data)
    proc = start_trainer(run)
    try:
        part = make_run(ws, "stopped-1", data)
        _CACHE["stopped"] = TinyRun(ws, data, part, stop_at_step(part, TINY_STEPS_PER_EPOCH + 1))
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _CACHE["tiny"] = TinyRun(ws, data, run, code)


def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """The tiny config trained for 2 epochs by a real trainer process, once per session."""
    if "tiny" not in _CACHE:
        _train_shared(tmp_path_factory)
    return _CACHE["tiny"]


def stopped(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """The same config and data, stopped with SIGTERM in the first step of epoch 2 (best.pt of
    epoch 1, last.pt of that step), once per session: resume a copy (`copy_run`), never this
    one."""
    if "stopped" not in _CACHE:
        _train_shared(tmp_path_factory)
    return _CACHE["stopped"]


def copy_run(run: RunDir, dest: Path) -> RunDir:
    """A copy of `run` under `dest` (same id; its workspace stays the original's)."""
    shutil.copytree(run.path, dest / run.name)
    return RunDir(dest / run.name)
