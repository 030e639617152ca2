"""Slurm executor: the [slurm] config table, the sbatch script submitit writes for a run, job
states from sacct/squeue, cancel (SIGTERM first), job arrays and Slurm's errors.

Slurm itself is faked by the executables in tests/fake_slurm/ (they log their argv and answer
in Slurm's formats); with FAKE_SLURM_RUN=1 the fake sbatch really runs the batch script, so
submitit's wrapper, TrainerTask and the stand-in trainer run for real. One test runs the same
task through submitit's local executor, no Slurm involved.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_slurm import fakeslurm
from runs_fixtures import wait_for as shared_wait_for

from amc_tui.config import Config, ConfigError, SlurmConfig, dumps_config, loads_config
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_json
from amc_tui.launch import slurm
from amc_tui.names import new_id
from amc_tui.run.rundir import RunDir, read_status

TESTS = Path(__file__).resolve().parent
FAKE_BIN = TESTS / "fake_slurm"
LIMIT_S = 120.0

FULL = """
[run]
executor = "slurm"
device = "cpu"
[slurm]
partition = "gpu"
nodes = 2
gpus_per_node = 4
cpus_per_task = 16
mem_gb = 64
time_min = 90
account = "proj"
qos = "high"
constraint = "a100"
additional = {exclusive = true, mail_type = "END"}
setup = ["module load cuda/12.4", "source /opt/env.sh"]
"""
SMALL = (
    '[train]\nepochs = 2\n[run]\nexecutor = "slurm"\ndevice = "cpu"\n[slurm]\ngpus_per_node = 0\n'
)


def wait_for(pred, timeout: float = LIMIT_S, every: float = 0.1):  # noqa: ANN001, ANN201
    """runs_fixtures.wait_for with this file's limit and poll interval."""
    return shared_wait_for(pred, timeout, every)


def make_run(ws: Path, name: str, cfg: Config) -> Path:
    """A run directory as the launcher leaves it before submission."""
    rd = ws / "runs" / name
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "config.toml").write_text(dumps_config(cfg))
    meta = {"id": new_id(), "name": name, "created_at": time.time(), "workspace": str(ws)}
    atomic_write_json(rd / "meta.json", meta)
    return rd


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake Slurm on PATH; its state folder is returned."""
    home = tmp_path / "slurmctld"
    monkeypatch.setenv("FAKE_SLURM_DIR", str(home))
    monkeypatch.setenv("PATH", f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.setenv("FAKE_EPOCH_S", "0.2")
    for key in ("FAKE_SBATCH_FAIL", "FAKE_SACCT_FAIL", "FAKE_SLURM_RUN", "FAKE_IGNORE_TERM"):
        monkeypatch.delenv(key, raising=False)
    yield home
    for pgid in (home / "steps").glob("*.pgid"):  # no job step outlives its test
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(pgid.read_text()), signal.SIGKILL)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "runs").mkdir(parents=True)
    return root


def cmds(home: Path, name: str) -> list[list[str]]:
    return [c["argv"] for c in fakeslurm.calls(home) if c["cmd"] == name]


# --------------------------------------------------------------------------- config


def test_config_defaults_to_local_and_reads_the_slurm_table() -> None:
    cfg = loads_config("")
    assert cfg.run.executor == "local"
    assert cfg.slurm.nodes == 1 and cfg.slurm.gpus_per_node == 1 and cfg.slurm.time_min == 1440
    full = loads_config(FULL)
    assert full.run.executor == "slurm" and full.slurm.partition == "gpu"
    assert full.slurm.mem_gb == 64.0 and isinstance(full.slurm.mem_gb, float)
    assert full.slurm.additional == {"exclusive": True, "mail_type": "END"}
    assert full.slurm.setup == ["module load cuda/12.4", "source /opt/env.sh"]
    assert loads_config(dumps_config(full)) == full


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[slurm]\npartiton = "gpu"\n',
            "unknown key 'partiton' in [slurm]; did you mean 'partition'?",
        ),
        ("[slurm]\ngpu_per_node = 2\n", "did you mean 'gpus_per_node'?"),
        (
            '[run]\nexecuter = "slurm"\n',
            "unknown key 'executer' in [run]; did you mean 'executor'?",
        ),
        ('[run]\nexecutor = "pbs"\n', '[run] executor must be "local" or "slurm", got "pbs"'),
        ("[slurm]\nnodes = 0\n", "[slurm] nodes must be in 1..4096, got 0"),
        ("[slurm]\ngpus_per_node = -1\n", "[slurm] gpus_per_node must be in 0..64, got -1"),
        ("[slurm]\ntime_min = 0\n", "[slurm] time_min must be in 1..525600, got 0"),
        ("[slurm]\nmem_gb = -4\n", "[slurm] mem_gb must be in 0..65536"),
        ("[slurm]\ncpus_per_task = 1.5\n", "[slurm] cpus_per_task must be an integer"),
        ('[slurm]\nsetup = "module load x"\n', "[slurm] setup must be a list of a string"),
        ('[slurm]\nadditional = {output = "x.log"}\n', "additional.output is set by amc-tui"),
        ("[slurm]\nadditional = {exclusive = false}\n", "additional.exclusive = false"),
        ("[slurm]\nadditional = {a = [1]}\n", "[slurm] additional must be a table"),
    ],
)
def test_bad_slurm_config_is_one_line_and_exit_2(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_config(text, "cfg.toml")
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    ("table", "launch"),
    [
        ("gpus_per_node = 1", []),
        ("gpus_per_node = 0", []),
        ("gpus_per_node = 4", ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]),
        ("nodes = 3\ngpus_per_node = 2", ["-m", "torch.distributed.run", "--nnodes=3",
         "--rdzv-backend=c10d", "--rdzv-endpoint=gpu-a7:29400", "--rdzv-id=77",
         "--nproc-per-node=2"]),
        ("nodes = 2\ngpus_per_node = 0", ["-m", "torch.distributed.run", "--nnodes=2",
         "--rdzv-backend=c10d", "--rdzv-endpoint=gpu-a7:29400", "--rdzv-id=77",
         "--nproc-per-node=1"]),
    ],
)  # fmt: skip
def test_trainer_command_is_python_or_torchrun(table: str, launch: list[str]) -> None:
    s = loads_config(f"[slurm]\n{table}\n").slurm
    argv = slurm.trainer_argv("/r/x", s, master="gpu-a7", job_id="77", python="py")
    assert argv == ["py", *launch, "-m", "amc_tui.train", "--run-dir", "/r/x"]
    resumed = slurm.trainer_argv("/r/x", s, resume=True, master="gpu-a7", job_id="77")
    assert resumed[-1] == "--resume" and resumed[0] == sys.executable


# --------------------------------------------------------------------------- submission


def test_sbatch_script_has_the_resources_setup_command_and_logs(fake: Path, ws: Path) -> None:
    rd = make_run(ws, "brave-otter-1", loads_config(FULL))
    record = slurm.submit(rd, loads_config(FULL))
    assert record["state"] == "submitted" and record["slurm_job_id"] == "1234"
    assert abs(record["submitted_at"] - time.time()) < 600
    assert record["slurm_log"] == str(rd / "slurm" / "1234_0_log.out")
    assert read_status(RunDir(rd)) == {}  # the launcher records the state, not submit
    (argv,) = cmds(fake, "sbatch")
    lines = (fake / "scripts" / "1234.sh").read_text().splitlines()
    assert Path(argv[-1]).resolve() == (rd / "slurm" / "1234_submission.sh").resolve()
    for line in (
        "#SBATCH --partition=gpu", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=16", "#SBATCH --mem=64GB",
        "#SBATCH --time=90", "#SBATCH --account=proj", "#SBATCH --qos=high",
        "#SBATCH --constraint=a100", "#SBATCH --exclusive", "#SBATCH --mail-type=END",
        "#SBATCH --no-requeue", "#SBATCH --job-name=amc-brave-otter-1",
        "#SBATCH --signal=USR2@90", f"#SBATCH --output={rd}/slurm/%j_0_log.out",
    ):  # fmt: skip
        assert line in lines, line
    assert not any(line.startswith("#SBATCH --error") for line in lines)
    setup = lines.index("module load cuda/12.4")
    assert lines[setup + 1] == "source /opt/env.sh"
    assert lines[setup + 2].startswith(f"export PYTHONPATH={TESTS.parent}")
    (srun,) = [line for line in lines if line.startswith("srun ")]
    assert lines.index(srun) > setup
    assert srun.endswith(f"-u -m submitit.core._submit {rd}/slurm")
    assert f"--output {rd}/slurm/%j_%t_log.out" in srun
    # the pickled task runs exactly this on the first node of job 1234
    with open(rd / "slurm" / "1234_submitted.pkl", "rb") as f:
        task = pickle.load(f).function
    assert isinstance(task, slurm.TrainerTask) and task.workspace == str(ws)
    assert slurm.trainer_argv(
        task.run_dir, SlurmConfig(**task.slurm), master="node1", job_id="1234"
    ) == [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--rdzv-backend=c10d",
        "--rdzv-endpoint=node1:29400", "--rdzv-id=1234", "--nproc-per-node=4",
        "-m", "amc_tui.train", "--run-dir", str(rd),
    ]  # fmt: skip


def test_state_follows_sacct_from_submitted_to_completed(fake: Path, ws: Path) -> None:
    cfg = loads_config(SMALL)
    jid = slurm.submit(make_run(ws, "calm-heron-2", cfg), cfg)["slurm_job_id"]
    seen = [slurm.job_state(jid)]
    for state in ("CONFIGURING", "RUNNING", "COMPLETED"):
        fakeslurm.set_state(fake, jid, state)
        seen.append(slurm.job_state(jid))
    assert seen == ["submitted", "submitted", "running", "completed"]
    assert cmds(fake, "sacct")[-1] == ["-o", "JobID,State,NodeList", "--parsable2", "-j", jid]
    for raw, ours in (("CANCELLED by 1000", "stopped"), ("TIMEOUT", "crashed"),
                      ("PREEMPTED", "crashed"), ("OUT_OF_MEMORY", "failed"),
                      ("NODE_FAIL", "failed"), ("FAILED", "failed")):  # fmt: skip
        fakeslurm.set_state(fake, jid, raw)
        assert slurm.job_state(jid) == ours, raw
    assert slurm.job_state("999") == "unknown"


def test_squeue_answers_when_sacct_cannot(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = loads_config(SMALL)
    jid = slurm.submit(make_run(ws, "calm-heron-3", cfg), cfg)["slurm_job_id"]
    monkeypatch.setenv("FAKE_SACCT_FAIL", "sacct: error: Slurm accounting storage is disabled")
    assert slurm.job_state(jid) == "submitted"
    fakeslurm.set_state(fake, jid, "RUNNING")
    assert slurm.job_state(jid) == "running"
    assert cmds(fake, "squeue")[-1] == ["-h", "-r", "-o", "%i|%T", "-j", jid]


def test_effective_state_lets_the_trainer_explain_a_clean_end() -> None:
    es = slurm.effective_state
    assert es("completed", "stopped") == "stopped"  # SIGTERM: trainer stopped, job ended clean
    assert es("crashed", "stopped") == "crashed"  # time limit / preemption: resume
    assert es("failed", "running") == "failed"  # killed before it could write
    assert es("completed", "completed") == "completed"
    assert es("stopped", None) == "stopped"  # cancelled while queued
    assert es("running", "stopped") == "running" and es("submitted", None) == "submitted"


def test_cancel_of_a_queued_job_is_a_plain_scancel(fake: Path, ws: Path) -> None:
    cfg = loads_config(SMALL)
    jid = slurm.submit(make_run(ws, "calm-heron-4", cfg), cfg)["slurm_job_id"]
    assert slurm.cancel(jid, grace_s=30) == "stopped"
    assert cmds(fake, "scancel") == [[jid]]
    assert slurm.job_state(jid) == "stopped"


def test_job_array_for_three_runs_with_parallelism(fake: Path, ws: Path) -> None:
    cfgs = [loads_config(SMALL) for _ in range(3)]
    rds = [make_run(ws, f"keen-lynx-{i}", c) for i, c in enumerate(cfgs)]
    records = slurm.submit_array(rds, cfgs, parallelism=2)
    assert [r["slurm_job_id"] for r in records] == ["1234_0", "1234_1", "1234_2"]
    assert records[1]["slurm_log"] == str(ws / "runs" / ".slurm" / "1234_1_0_log.out")
    assert len(cmds(fake, "sbatch")) == 1
    lines = (fake / "scripts" / "1234.sh").read_text().splitlines()
    assert "#SBATCH --array=0-2%2" in lines
    assert f"#SBATCH --output={ws}/runs/.slurm/%A_%a_0_log.out" in lines
    for i, rd in enumerate(rds):
        with open(ws / "runs" / ".slurm" / f"1234_{i}_submitted.pkl", "rb") as f:
            assert pickle.load(f).function.run_dir == str(rd)
    ids = [r["slurm_job_id"] for r in records]
    assert slurm.job_states(ids) == dict.fromkeys(ids, "submitted")  # `1234_[0-2%2]` unfolded
    fakeslurm.set_state(fake, "1234_0", "RUNNING")
    assert slurm.job_states(ids) == {"1234_0": "running", "1234_1": "submitted",
                                     "1234_2": "submitted"}  # fmt: skip
    other = loads_config(SMALL + "partition = 'cpu'\n")
    with pytest.raises(slurm.SlurmError, match="keen-lynx-1 differs in slurm.partition"):
        slurm.submit_array(rds[:2], [cfgs[0], other], parallelism=1)


def test_no_sbatch_on_path_is_a_user_error_and_submits_nothing(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    cfg = loads_config(SMALL)
    rd = make_run(ws, "lone-wolf-5", cfg)
    with pytest.raises(UserError) as info:
        slurm.submit(rd, cfg)
    assert str(info.value) == "executor = slurm but sbatch is not on PATH"
    assert info.value.exit_code == 2
    assert not (rd / "slurm").exists()


def test_sbatch_refusal_carries_slurms_message(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    msg = "sbatch: error: Batch job submission failed: Invalid account or account/partition"
    monkeypatch.setenv("FAKE_SBATCH_FAIL", msg)
    cfg = loads_config(SMALL)
    with pytest.raises(slurm.SlurmError) as info:
        slurm.submit(make_run(ws, "lone-wolf-6", cfg), cfg)
    assert str(info.value) == f"sbatch failed: {msg}"
    assert isinstance(info.value, UserError) and "Traceback" not in str(info.value)


# --------------------------------------------------------------------------- jobs that run


def _running(fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch, name: str, epochs: int = 2,  # noqa: ANN202
             hold: bool = False):  # fmt: skip
    """Submit a run of the stand-in trainer that the fake Slurm really runs; return once the
    trainer has written `running`. `hold`: it waits after epoch 1 until signalled
    (FAKE_HOLD_AFTER), so it still runs whenever the test acts on it."""
    monkeypatch.setenv("FAKE_SLURM_RUN", "1")
    if hold:
        monkeypatch.setenv("FAKE_HOLD_AFTER", "1")
    cfg = loads_config(SMALL.replace("epochs = 2", f"epochs = {epochs}"))
    rd = make_run(ws, name, cfg)
    jid = slurm.submit(rd, cfg, module="runs_fake_trainer")["slurm_job_id"]
    wait_for(lambda: read_status(RunDir(rd)).get("state") == "running")
    return rd, jid


def test_job_runs_the_trainer_to_completion(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd, jid = _running(fake, ws, monkeypatch, "swift-fox-7", epochs=2)
    wait_for(lambda: slurm.job_state(jid) == "completed")
    assert read_status(RunDir(rd))["state"] == "completed"
    assert "starting trainer at" in (rd / "train.log").read_text()
    assert f"in job {jid}" in (rd / "train.log").read_text()
    with open(rd / "slurm" / f"{jid}_0_result.pkl", "rb") as f:
        assert pickle.load(f) == ("success", 0)


def test_cancel_sends_sigterm_first_and_the_trainer_checkpoints(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd, jid = _running(fake, ws, monkeypatch, "swift-fox-8", hold=True)
    job = slurm.cancel(jid, grace_s=LIMIT_S, poll_s=0.1)
    assert cmds(fake, "scancel") == [["--signal=TERM", jid]]  # ended within the grace
    status = read_status(RunDir(rd))
    assert job == "completed" and status["state"] == "stopped"
    assert slurm.effective_state(job, status["state"]) == "stopped"


def test_cancel_ends_a_trainer_that_ignores_sigterm_after_the_grace(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_IGNORE_TERM", "1")
    rd, jid = _running(fake, ws, monkeypatch, "swift-fox-9", hold=True)
    assert slurm.cancel(jid, grace_s=0.5, poll_s=0.1) == "stopped"
    assert cmds(fake, "scancel") == [["--signal=TERM", jid], [jid]]
    assert slurm.job_state(jid) == "stopped"


def test_time_limit_warning_makes_the_trainer_checkpoint_and_the_run_resumable(
    fake: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rd, jid = _running(fake, ws, monkeypatch, "swift-fox-10", hold=True)
    assert fakeslurm.main("scancel", ["--signal=USR2", jid]) == 0  # what Slurm sends before
    wait_for(lambda: read_status(RunDir(rd)).get("state") == "stopped")
    log = rd / "slurm" / f"{jid}_0_log.out"
    wait_for(lambda: "waiting for Slurm's end" in log.read_text())
    assert slurm.job_state(jid) == "running"  # the task holds on until the limit
    fakeslurm.main("scancel", [jid])  # the limit: Slurm ends the job as TIMEOUT
    fakeslurm.set_state(fake, jid, "TIMEOUT")
    assert slurm.effective_state(slurm.job_state(jid), "stopped") == "crashed"


def test_local_executor_runs_the_task_end_to_end(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.setenv("FAKE_EPOCH_S", "0.2")
    cfg = loads_config(SMALL)
    rd = make_run(ws, "quiet-owl-11", cfg)
    record = slurm.submit(rd, cfg, module="runs_fake_trainer", cluster="local")
    result = rd / "slurm" / f"{record['slurm_job_id']}_0_result.pkl"
    wait_for(result.is_file)
    with open(result, "rb") as f:
        assert pickle.load(f) == ("success", 0)
    assert read_status(RunDir(rd))["state"] == "completed"
    assert "starting trainer at" in (rd / "train.log").read_text()
