"""A stand-in Slurm for tests: the sbatch, srun, squeue, sacct and scancel executables in this
folder all call `main(<their name>, argv)`. Standard library only.

State lives in $FAKE_SLURM_DIR: calls.jsonl (every call's argv), jobs.json (next job id, each
job's state, arrays), scripts/<id>.sh (each submitted batch script) and steps/<id>.pgid (the
running step's process group). A test changes a job's state with `set_state`; sacct and squeue
answer from it in their real output formats.

Knobs (environment): FAKE_SBATCH_FAIL=<message> (sbatch prints it on stderr and exits 1),
FAKE_SACCT_FAIL=<message> (sacct likewise, e.g. accounting disabled), FAKE_SLURM_RUN=1 (sbatch
also runs the script: RUNNING, then COMPLETED or FAILED by its exit code, unless cancelled;
srun runs its command as the job step, in its own process group, with SLURM_* set).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIRST_ID = 1234
ACTIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING")


def home() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"])


def calls(root: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded call, oldest first: {"cmd": name, "argv": [...]}."""
    path = (root or home()) / "calls.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def jobs(root: Path | None = None) -> Iterator[dict[str, Any]]:
    """jobs.json, locked for a read-modify-write."""
    root = root or home()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "jobs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "jobs.json"
        data = json.loads(path.read_text()) if path.is_file() else {}
        data.setdefault("next", FIRST_ID)
        data.setdefault("states", {})
        data.setdefault("arrays", {})
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)


def set_state(root: Path, job_id: str, state: str) -> None:
    with jobs(root) as d:
        d["states"][str(job_id)] = state


def get_state(root: Path, job_id: str) -> str | None:
    with jobs(root) as d:
        return d["states"].get(str(job_id))


def _log(name: str, argv: list[str]) -> None:
    home().mkdir(parents=True, exist_ok=True)
    with open(home() / "calls.jsonl", "a") as f:
        f.write(json.dumps({"cmd": name, "argv": argv}) + "\n")


def _sbatch(argv: list[str]) -> int:
    if os.environ.get("FAKE_SBATCH_FAIL"):
        print(os.environ["FAKE_SBATCH_FAIL"], file=sys.stderr)
        return 1
    script = Path(argv[-1])
    text = script.read_text()
    array = re.search(r"^#SBATCH --array=0-(\d+)%(\d+)$", text, re.M)
    with jobs() as d:
        jid = str(d["next"])
        d["next"] += 1
        if array:
            n = int(array.group(1)) + 1
            d["arrays"][jid] = {"n": n, "par": int(array.group(2))}
            for k in range(n):
                d["states"][f"{jid}_{k}"] = "PENDING"
        else:
            d["states"][jid] = "PENDING"
    (home() / "scripts").mkdir(exist_ok=True)
    copy = home() / "scripts" / f"{jid}.sh"
    copy.write_text(text)
    if os.environ.get("FAKE_SLURM_RUN") == "1" and not array:
        with open(home() / f"runner_{jid}.log", "ab") as err:
            subprocess.Popen(
                [sys.executable, str(Path(__file__).parent / "srun"), "--fake-runner", jid],
                start_new_session=True, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
            )  # fmt: skip
    print(f"Submitted batch job {jid}")
    return 0


def _sbatch_output(text: str, jid: str) -> str:
    m = re.search(r"^#SBATCH --output=(.*)$", text, re.M)
    path = shlex.split(m.group(1))[0] if m else f"slurm-{jid}.out"
    return path.replace("%j", jid)


def _runner(jid: str) -> int:
    """The batch step: what slurmctld and slurmd would do for one job."""
    script = home() / "scripts" / f"{jid}.sh"
    set_state(home(), jid, "RUNNING")
    env = {**os.environ, "SLURM_JOB_ID": jid, "SLURM_JOB_NUM_NODES": "1",
           "SLURM_JOB_NODELIST": socket.gethostname()}  # fmt: skip
    with open(_sbatch_output(script.read_text(), jid), "ab") as out:
        rc = subprocess.call(["bash", str(script)], env=env, stdout=out, stderr=out)
    with jobs() as d:
        if d["states"].get(jid) == "RUNNING":
            d["states"][jid] = "COMPLETED" if rc == 0 else "FAILED"
    return 0


def _srun(argv: list[str]) -> int:
    if argv[:1] == ["--fake-runner"]:
        return _runner(argv[1])
    args, output = list(argv), None
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("--output", "--error"):
            value = args.pop(0)
            output = value if opt == "--output" else output
    jid = os.environ["SLURM_JOB_ID"]
    output = (output or f"slurm-{jid}.out").replace("%j", jid).replace("%t", "0")
    env = {**os.environ, "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_NTASKS": "1", "SLURM_STEP_ID": "0"}  # fmt: skip
    with open(output, "ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out, start_new_session=True)
    (home() / "steps").mkdir(exist_ok=True)
    (home() / "steps" / f"{jid}.pgid").write_text(str(proc.pid))
    return proc.wait()


def _signal_step(jid: str, sig: signal.Signals) -> None:
    pgid_file = home() / "steps" / f"{jid}.pgid"
    if pgid_file.is_file():
        with contextlib.suppress(OSError):
            os.killpg(int(pgid_file.read_text()), sig)


def _scancel(argv: list[str]) -> int:
    sig = next((a.split("=", 1)[1] for a in argv if a.startswith("--signal=")), None)
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--state=")), None)
    rc = 0
    for jid in (a for a in argv if not a.startswith("-")):
        with jobs() as d:
            targets = [k for k in d["states"] if k == jid or k.startswith(f"{jid}_")]
            if not targets:
                print(f"scancel: error: Invalid job id {jid}", file=sys.stderr)
                rc = 1
            for t in targets:
                state = d["states"][t]
                if only is not None and state not in only:
                    continue  # --state=PENDING,RUNNING: only the tasks in those states
                if sig is not None and state != "RUNNING":
                    why = "Job is pending execution" if state == "PENDING" else "already completed"
                    print(f"scancel: error: Kill job error on job id {t}: {why}", file=sys.stderr)
                    rc = 1
                elif sig is not None:
                    _signal_step(t, signal.Signals[f"SIG{sig.removeprefix('SIG')}"])
                elif state in ACTIVE:
                    d["states"][t] = "CANCELLED by 1000"
                    _signal_step(t, signal.SIGKILL)
    return rc


def _sacct(argv: list[str]) -> int:
    if os.environ.get("FAKE_SACCT_FAIL"):
        print(os.environ["FAKE_SACCT_FAIL"], file=sys.stderr)
        return 1
    wanted = [argv[i + 1] for i, a in enumerate(argv) if a == "-j"]
    lines = ["JobID|State|NodeList"]
    with jobs() as d:
        states, arrays = d["states"], d["arrays"]
    for main in wanted:
        if main in arrays:
            n, par = arrays[main]["n"], arrays[main]["par"]
            tasks = [(k, states[f"{main}_{k}"]) for k in range(n)]
            pending = [k for k, s in tasks if s == "PENDING"]
            for k, s in tasks:
                if s != "PENDING":
                    lines += [f"{main}_{k}|{s}|node1", f"{main}_{k}.batch|{s}|node1"]
            if pending:  # Slurm folds the array's pending tasks into one range
                lines.append(f"{main}_[{pending[0]}-{pending[-1]}%{par}]|PENDING|None assigned")
        elif main in states:
            s = states[main]
            lines.append(f"{main}|{s}|{'None assigned' if s == 'PENDING' else 'node1'}")
            if s != "PENDING":
                lines.append(f"{main}.batch|{s}|node1")
    print("\n".join(lines))
    return 0


def _squeue(argv: list[str]) -> int:
    ids = argv[argv.index("-j") + 1].split(",")
    with jobs() as d:
        states = d["states"]
    known = [j for j in ids if j in states]
    if len(ids) == 1 and not known:
        print("slurm_load_jobs error: Invalid job id specified", file=sys.stderr)
        return 1
    for j in known:
        if states[j] in ACTIVE:
            print(f"{j}|{states[j]}")
    return 0


COMMANDS = {"sbatch": _sbatch, "srun": _srun, "scancel": _scancel, "sacct": _sacct,
            "squeue": _squeue}  # fmt: skip


def main(name: str, argv: list[str]) -> int:
    if argv[:1] != ["--fake-runner"]:
        _log(name, argv)
    return COMMANDS[name](argv)
