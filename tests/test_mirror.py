"""Mirrors ([mirror]): real tiny trainers write TensorBoard and W&B (offline) copies of their
history, read back with TensorBoard's own reader and W&B's own record protos; a trainer whose
mirrors fail (a tensorboard that does not import, a W&B that raises on every call) trains the
same numbers and records each failure once; `amc-tui mirror` backfills a run that has none;
`config check` refuses a mirror whose package is missing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from train_fixtures import (
    REPO,
    TINY_STEPS_PER_EPOCH,
    events,
    log_text,
    make_data,
    make_run,
    run_trainer,
    start_trainer,
    stop_at_step,
)
from wandb_reader import read_offline_run

from amc_tui.cli import main
from amc_tui.run.rundir import RunDir, read_meta

SHIMS = Path(__file__).resolve().parent / "mirror_shims"
MIRRORS = '[mirror]\ntensorboard = true\nwandb = "offline"\n'
METRICS = ("loss", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db", "snr_within_1")


def wandb_env(root: Path) -> dict[str, str]:
    """W&B offline, its own folders under `root` (nothing in the user's home)."""
    return {"WANDB_MODE": "offline", "WANDB_CONFIG_DIR": str(root / "wandb-config"),
            "WANDB_CACHE_DIR": str(root / "wandb-cache"), "WANDB_DATA_DIR": str(root / "wandb-data")}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, RunDir]:
    """Three real trainers side by side, same config and data, both mirrors on: `mirrored`
    with the real packages, `down` with the shims first on its PYTHONPATH, `no_key` with W&B
    online and no API key anywhere (a fresh HOME)."""
    ws = tmp_path_factory.mktemp("mirror_ws")
    data = make_data(ws / "data" / "tiny.h5")
    env = wandb_env(ws)
    online = MIRRORS.replace('"offline"', '"online"')
    out = {"mirrored": make_run(ws, "mirrored-1", data, extra=MIRRORS),
           "down": make_run(ws, "down-1", data, extra=MIRRORS),
           "no_key": make_run(ws, "no-key-1", data, extra=online)}  # fmt: skip
    down_env = {**env, "PYTHONPATH": f"{SHIMS / 'down'}{os.pathsep}{REPO}"}
    (ws / "home").mkdir()
    no_key_env = {**env, "WANDB_MODE": "online", "HOME": str(ws / "home"), "WANDB_API_KEY": ""}
    procs = [start_trainer(out["mirrored"], env_extra=env),
             start_trainer(out["down"], env_extra=down_env),
             start_trainer(out["no_key"], env_extra=no_key_env)]  # fmt: skip
    try:
        for proc, run in zip(procs, out.values(), strict=True):
            assert proc.wait(timeout=180) == 0, log_text(run)[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """Every scalar of a TensorBoard folder, read with TensorBoard's own EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: {s.step: s.value for s in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def snr_curve(per_cell: Path, metric: str) -> dict[int, float]:
    df = pd.read_csv(per_cell)
    df = df[df.n > 0]
    return {int(snr): float((g[metric] * g.n).sum() / g.n.sum()) for snr, g in df.groupby("snr_db")}


def check_tensorboard(run: RunDir) -> None:
    got = scalars(run.path / "tensorboard")
    epochs = events(run, "epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    for ev in epochs:
        step = ev["epoch"]
        for split in ("train", "val"):
            for m in METRICS:
                assert got[f"{split}/{m}"][step] == np.float32(ev[split][m]), (split, m, step)
        assert got["weights/mod"][step] == np.float32(ev["weights"]["mod"])
        assert got["lr"][step] == np.float32(ev["lr"])
        assert got["throughput/samples_per_s"][step] == np.float32(ev["samples_per_s"])
        curve = snr_curve(run.epoch_export(step) / "per_cell.csv", "acc_combined")
        assert len(curve) == 11  # 0..20 dB
        for snr, value in curve.items():
            assert got[f"val_by_snr/acc_combined/{snr:+d}dB"][step] == pytest.approx(
                value, abs=1e-6
            )
    final = json.loads((run.final_export / "summary.json").read_text())
    for m in METRICS:
        assert got[f"test/{m}"][final["epoch"]] == np.float32(final["test"][m])


def offline_run_dirs(run: RunDir) -> list[Path]:
    return sorted((run.path / "wandb").glob("offline-run-*"))


def check_wandb(folder: Path, run: RunDir) -> None:
    meta = read_meta(run)
    wb = read_offline_run(folder)
    assert wb.name == run.name and wb.run_id == f"amc-{meta['id']}"
    assert wb.config["train"]["lr"] == 0.002 and wb.config["amc_tui"]["run_id"] == meta["id"]
    rows = {h["epoch"]: h for h in wb.history if "val/acc_combined" in h}
    epochs = events(run, "epoch")
    assert sorted(rows) == [e["epoch"] for e in epochs]
    for ev in epochs:
        row = rows[ev["epoch"]]
        assert row["_step"] == ev["epoch"]
        for split in ("train", "val"):
            for m in METRICS:
                assert row[f"{split}/{m}"] == ev[split][m], (split, m, ev["epoch"])
    final = json.loads((run.final_export / "summary.json").read_text())
    for m in METRICS:
        assert wb.summary[f"test/{m}"] == final["test"][m]
    cells = pd.read_csv(run.final_export / "per_cell.csv")
    assert wb.summary["test/per_cell/nrows"] == len(cells)
    assert wb.exit_code == 0


def test_tensorboard_mirror_holds_every_epoch_of_events_jsonl(runs) -> None:
    run = runs["mirrored"]
    assert events(run, "mirror") == [], events(run, "mirror")
    check_tensorboard(run)


def test_wandb_offline_run_is_named_after_the_run_with_the_same_history(runs) -> None:
    (folder,) = offline_run_dirs(runs["mirrored"])
    check_wandb(folder, runs["mirrored"])


def show(ws: Path, name: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--workspace", str(ws), "show", name]) == 0
    return out.getvalue()


def test_show_prints_the_sync_command(runs, monkeypatch) -> None:
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    run = runs["mirrored"]
    (folder,) = offline_run_dirs(run)
    text = show(run.path.parent.parent, run.name)
    assert f"wandb sync {folder}" in text
    assert f"tensorboard --logdir {run.path / 'tensorboard'}" in text


def test_failing_mirrors_leave_the_run_alone(runs, monkeypatch) -> None:
    run, twin = runs["down"], runs["mirrored"]
    assert read_json_state(run) == "completed"
    # the same numbers as the run whose mirrors worked
    assert [(e["train"], e["val"]) for e in events(run, "epoch")] == [
        (e["train"], e["val"]) for e in events(twin, "epoch")
    ]
    failures = events(run, "mirror")
    assert sorted(f["target"] for f in failures) == ["tensorboard", "wandb"]  # once each
    by = {f["target"]: f["error"] for f in failures}
    assert (
        "ModuleNotFoundError" in by["tensorboard"] and "amc-tui[tensorboard]" in by["tensorboard"]
    )
    assert "W&B is unreachable" in by["wandb"]
    assert not (run.path / "tensorboard").exists() and not offline_run_dirs(run)
    assert "Traceback" not in log_text(run)
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    text = show(run.path.parent.parent, run.name)
    assert text.count("tensorboard mirror failed") == 1 and text.count("wandb mirror failed") == 1


def read_json_state(run: RunDir) -> str:
    return json.loads(run.status.read_text())["state"]


def cli(ws: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), "AMC_TUI_NO_WORKER": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", "--workspace", str(ws), *argv],
        capture_output=True, text=True, env=full, timeout=120,
    )  # fmt: skip


def test_backfill_writes_an_old_runs_history(runs, tmp_path) -> None:
    """The run whose mirrors failed, copied into a workspace, then `amc-tui mirror`."""
    (tmp_path / "runs").mkdir()
    shutil.copytree(runs["down"].path, tmp_path / "runs" / "down-1")
    run = RunDir(tmp_path / "runs" / "down-1")
    env = wandb_env(tmp_path)
    for _ in range(2):  # twice: the folder is rebuilt, never doubled
        done = cli(tmp_path, "mirror", "down-1", "--to", "tensorboard", env=env)
        assert done.returncode == 0, done.stderr
    assert len(list((run.path / "tensorboard").glob("events.out.tfevents.*"))) == 1
    check_tensorboard(run)
    done = cli(tmp_path, "mirror", "down-1", "--to", "wandb", env=env)
    assert done.returncode == 0, done.stderr
    (folder,) = offline_run_dirs(run)
    assert f"wandb sync {folder}" in done.stdout
    check_wandb(folder, run)


def test_backfill_of_an_unknown_run_is_one_line_exit_2(tmp_path) -> None:
    (tmp_path / "runs").mkdir()
    done = cli(tmp_path, "mirror", "nope", "--to", "tensorboard")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("setting", "extra"), [("tensorboard = true", "tensorboard"),
                                                 ('wandb = "online"', "wandb")])  # fmt: skip
def test_config_check_refuses_a_mirror_without_its_package(tmp_path, setting, extra) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[mirror]\n{setting}\n")
    hidden = {"PYTHONPATH": f"{SHIMS / 'uninstalled'}{os.pathsep}{REPO}"}
    done = cli(tmp_path, "config", "check", str(cfg), env=hidden)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and f"pip install 'amc-tui[{extra}]'" in done.stderr
    assert done.stdout == ""
    ok = cli(tmp_path, "config", "check", str(cfg))  # installed here: accepted
    assert ok.returncode == 0 and "[mirror]" in ok.stdout


def test_a_resumed_run_goes_on_in_the_same_mirrors(tmp_path, monkeypatch) -> None:
    """Stopped in epoch 2, resumed: one W&B id over both attempts, epochs 1 and 2 once each;
    TensorBoard's second event file continues the first."""
    data = make_data(tmp_path / "data" / "tiny.h5")
    run = make_run(tmp_path, "resumed-1", data, extra=MIRRORS)
    env = wandb_env(tmp_path)
    monkeypatch.setenv("AMC_TUI_NO_WORKER", "1")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert stop_at_step(run, TINY_STEPS_PER_EPOCH + 1) == 0, log_text(run)[-3000:]
    assert run_trainer(run, "--resume") == 0, log_text(run)[-3000:]
    folders = offline_run_dirs(run)
    assert len(folders) == 2
    attempts = [read_offline_run(f) for f in folders]
    assert {a.run_id for a in attempts} == {f"amc-{read_meta(run)['id']}"}
    epochs = [h["epoch"] for a in attempts for h in a.history if "val/acc_combined" in h]
    assert epochs == [1, 2]
    assert len(list((run.path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    check_tensorboard(run)


def test_backfill_of_a_group_shares_one_wandb_group(tmp_path) -> None:
    """Two members of a sweep group (hand-made finished runs): `amc-tui mirror GROUP` gives
    each its own W&B run in the group's W&B group, the point as job type."""
    from runs_fixtures import make_fake_run, runs_workspace

    from amc_tui.sweeps.group import Group, groups_root, save

    ws = runs_workspace(tmp_path)
    members = []
    for seed in (1, 2):
        rd = make_fake_run(ws, f"seedy-run-{seed}", seed=seed, epochs=3)
        meta = read_meta(rd)
        meta.update(group="lr-sweep", point={"train.lr": 0.001}, repeat=seed - 1)
        rd.meta.write_text(json.dumps(meta))
        members.append({"id": meta["id"], "name": rd.name, "point": 0, "repeat": seed - 1})
    folder = groups_root(ws) / "lr-sweep"
    folder.mkdir(parents=True)
    save(Group(id="g1234567", name="lr-sweep", dir=folder, created_at=1.0, sweep={}, spec={},
               points=[{"index": 0, "key": "p0", "label": "train.lr=0.001",
                        "values": {"train.lr": 0.001}}], members=members))  # fmt: skip
    done = cli(ws.root, "mirror", "lr-sweep", "--to", "wandb", env=wandb_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("mirrored to wandb") == 2
    for m in members:
        run = RunDir(ws.runs / m["name"])
        (folder,) = offline_run_dirs(run)
        wb = read_offline_run(folder)
        assert (wb.name, wb.group, wb.job_type) == (m["name"], "lr-sweep", "train.lr=0.001")
        assert [h["epoch"] for h in wb.history if "val/acc_combined" in h] == [1, 2, 3]


def test_wandb_online_without_a_key_is_recorded_not_prompted(runs) -> None:
    run = runs["no_key"]
    assert read_json_state(run) == "completed"
    (failure,) = events(run, "mirror")
    assert failure["target"] == "wandb" and "API key" in failure["error"], failure
    assert [(e["train"], e["val"]) for e in events(run, "epoch")] == [
        (e["train"], e["val"]) for e in events(runs["mirrored"], "epoch")
    ]
    assert len(list((run.path / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_a_hung_wandb_neither_holds_the_run_nor_its_exit(tmp_path) -> None:
    """W&B's start-up never returns (a network outage) and its exit hook would wait forever:
    TensorBoard still gets everything, finish waits AMC_TUI_MIRROR_WAIT_S, records it once, and
    the trainer process ends."""
    data = make_data(tmp_path / "data" / "tiny.h5")
    run = make_run(tmp_path, "hung-1", data, epochs=1, extra=MIRRORS)
    env = {**wandb_env(tmp_path), "AMC_TUI_MIRROR_WAIT_S": "1",
           "PYTHONPATH": f"{SHIMS / 'hung'}{os.pathsep}{REPO}"}  # fmt: skip
    assert run_trainer(run, env_extra=env, timeout=120) == 0, log_text(run)[-3000:]
    assert read_json_state(run) == "completed"
    (failure,) = events(run, "mirror")
    assert (failure["target"], failure["error"]) == ("wandb", "still busy 1 s after the run ended")
    got = scalars(run.path / "tensorboard")
    assert got["val/acc_mod"] == {1: np.float32(events(run, "epoch")[0]["val"]["acc_mod"])}
