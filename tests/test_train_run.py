"""The trainer as a real process on tiny synthetic data: contract, learning, export, resume,
failures. The 2-epoch tiny run is shared (train_fixtures.tiny_run)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from train_fixtures import (
    TINY,
    TINY_CLASSES,
    TINY_SWIN_TOML,
    copy_run,
    events,
    log_text,
    make_run,
    run_trainer,
    start_trainer,
    stopped,
    tiny,
)

from amc_tui import contract
from amc_tui.run.rundir import read_status
from amc_tui.train import checkpoint as ckpt

STATUS_KEYS = {
    "state", "pid", "pgid", "device", "gpus", "epoch", "epochs", "step", "started_at",
    "ended_at", "heartbeat_at", "exit_code", "best", "error", "runlog_error",
}  # fmt: skip
SPLIT_KEYS = {"loss", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db", "snr_within_1"}
# Measured: 0.597 val modulation accuracy on frames >= 10 dB after 2 epochs (4 classes).
HIGH_SNR_ACC_MIN = 0.40  # chance is 0.25


def hi_snr_acc(per_cell: pd.DataFrame, snr_min: int = 10) -> float:
    hi = per_cell[per_cell.snr_db >= snr_min]
    return float((hi.acc_mod * hi.n).sum() / hi.n.sum())


# --------------------------------------------------------------------------- the tiny run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return tiny(tmp_path_factory)


def test_tiny_run_completes_and_learns(tiny_run) -> None:
    run = tiny_run.run
    assert tiny_run.code == 0, log_text(run)[-3000:]
    st = read_status(run)
    assert st["state"] == "completed" and st["exit_code"] == 0 and st["error"] is None
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2]
    acc = hi_snr_acc(pd.read_csv(run.epoch_export(2) / "per_cell.csv"))
    print(f"val acc_mod on frames >= 10 dB after 2 epochs: {acc:.3f} (chance 0.25)")
    assert acc >= HIGH_SNR_ACC_MIN


def test_status_and_events_follow_the_contract(tiny_run) -> None:
    run = tiny_run.run
    st = read_status(run)
    assert set(st) >= STATUS_KEYS
    assert st["epoch"] == st["epochs"] == 2 and st["device"] == "cpu" and st["gpus"] == []
    assert st["ended_at"] >= st["started_at"] and st["heartbeat_at"] >= st["started_at"]
    evs = events(run)
    kinds = [e["kind"] for e in evs]
    assert kinds[0] == "start" and kinds[-1] == "end"
    start = evs[0]
    assert {"run_id", "name", "device", "world_size", "n_train", "n_val", "n_test", "classes",
            "snrs", "params"} <= set(start)  # fmt: skip
    assert start["classes"] == TINY_CLASSES and start["snrs"] == list(range(0, 21, 2))
    steps = events(run, "step")
    assert steps and all({"epoch", "step", "loss", "loss_mod", "loss_snr", "lr", "samples_per_s"}
                         <= set(e) for e in steps)  # fmt: skip
    assert [e["step"] for e in steps] == sorted({e["step"] for e in steps})
    for ev in events(run, "epoch"):
        assert set(ev["train"]) >= SPLIT_KEYS and set(ev["val"]) >= SPLIT_KEYS
        assert set(ev["weights"]) == {"mod", "snr"} == set(ev["uncertainty"])
        assert math.isclose(sum(ev["weights"].values()), 1.0, abs_tol=1e-5)
        for key in ("epoch_time_s", "samples_per_s", "lr", "is_best"):
            assert key in ev
    best = [e for e in events(run, "epoch") if e["is_best"]][-1]
    assert st["best"] == {"metric": "val.acc_combined", "value": best["val"]["acc_combined"],
                          "epoch": best["epoch"]}  # fmt: skip
    ckpts = events(run, "checkpoint")
    assert any(c["best"] for c in ckpts) and any(not c["best"] for c in ckpts)
    assert all(c["seconds"] > 0 and c["bytes"] > 0 and "step" in c for c in ckpts)
    assert st["runlog_error"] is None
    assert "cpu: 1 torch thread (train.threads)" in log_text(run)  # the config's count wins
    assert run.last_ckpt.is_file() and run.best_ckpt.is_file()
    exports = [Path(e["dir"]).name for e in events(run, "export")]
    assert exports == ["epoch_001", "epoch_002", "final"]
    end = evs[-1]
    assert end["state"] == "completed" and end["exit_code"] == 0 and end["best"] == st["best"]
    # the trainer wrote its RUNLOG.md entry
    runlog = (tiny_run.ws / "RUNLOG.md").read_text()
    assert "amc-tui:begin idtiny-r" in runlog


def test_checkpoint_holds_the_full_training_state(tiny_run) -> None:
    state = ckpt.load(tiny_run.run.last_ckpt)
    for key in ("model", "optimizer", "schedule", "scaler", "weighting", "epoch", "step",
                "rng", "config", "config_hash", "best"):  # fmt: skip
        assert key in state
    assert state["epoch"] == 2 and state["batch_in_epoch"] == 0
    assert state["step"] == read_status(tiny_run.run)["step"]
    assert "log_var" in state["weighting"]


def test_export_consistency(tiny_run) -> None:
    run = tiny_run.run
    start = events(run, "start")[0]
    for ev in events(run, "epoch"):
        folder = run.epoch_export(ev["epoch"])
        pc = pd.read_csv(folder / "per_cell.csv")
        assert list(pc.columns) == ["modulation", "snr_db", "n", "acc_mod", "acc_snr",
                                    "acc_combined", "snr_mae_db"]  # fmt: skip
        assert sorted(set(pc.modulation)) == sorted(TINY_CLASSES)  # selected classes only
        assert sorted(set(pc.snr_db)) == list(range(0, 21, 2))
        n = pc.n.sum()
        assert n == start["n_val"]
        for key in ("acc_mod", "acc_snr", "acc_combined", "snr_mae_db"):
            assert (pc[key] * pc.n).sum() / n == pytest.approx(ev["val"][key], abs=2e-6)
        assert (pc.acc_combined <= np.minimum(pc.acc_mod, pc.acc_snr) + 1e-12).all()
        v = ev["val"]
        assert v["acc_combined"] <= min(v["acc_mod"], v["acc_snr"])
        for name in ("confusion_mod.csv", "confusion_snr.csv"):
            conf = pd.read_csv(folder / name, index_col=0)
            assert conf.values.sum() == start["n_val"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["epoch"] == ev["epoch"] and summary["val"] == ev["val"]
        assert summary["split_sizes"] == {"train": start["n_train"], "val": start["n_val"],
                                          "test": start["n_test"]}  # fmt: skip
    final = run.final_export
    summary = json.loads((final / "summary.json").read_text())
    assert summary["split"] == "test" and summary["epoch"] == read_status(run)["best"]["epoch"]
    pc = pd.read_csv(final / "per_cell.csv")
    assert pc.n.sum() == start["n_test"]
    assert (pc.acc_mod * pc.n).sum() / pc.n.sum() == pytest.approx(
        summary["test"]["acc_mod"], abs=2e-6
    )
    assert pd.read_csv(final / "confusion_mod.csv", index_col=0).values.sum() == start["n_test"]
    assert summary["test"]["acc_combined"] <= min(
        summary["test"]["acc_mod"], summary["test"]["acc_snr"]
    )


# --------------------------------------------------------------------------- resume


def test_resume_after_sigterm_equals_a_straight_run(tiny_run, tmp_path_factory, tmp_path) -> None:
    straight = tiny_run.run
    part = stopped(tmp_path_factory)  # the same config and data, SIGTERM in epoch 2's step 1
    st = read_status(part.run)
    assert part.code == 0 and st["state"] == "stopped", log_text(part.run)[-3000:]
    assert st["exit_code"] == 0 and part.run.last_ckpt.is_file()
    saved = ckpt.load(part.run.last_ckpt)  # the resume below starts mid-epoch
    assert (saved["epoch"], saved["batch_in_epoch"]) == (1, 1)
    assert events(part.run)[-1]["kind"] == "end" and events(part.run)[-1]["state"] == "stopped"
    run = copy_run(part.run, tmp_path)
    assert run_trainer(run, "--resume") == 0, log_text(run)[-3000:]
    assert read_status(run)["state"] == "completed"
    assert [e["epoch"] for e in events(run, "epoch")] == [1, 2]
    starts = events(run, "start")
    assert [e["resumed"] for e in starts] == [False, True]
    # the resume began at batch 1 of epoch 2: its epoch 2 event is partial, not an epoch time
    assert [e["batch"] for e in starts] == [0, 1] and contract.start_share(starts[1]) > 0
    clock = contract.EpochClock()
    for ev in events(run):
        clock.feed(ev)
    assert clock.epoch_s == events(run, "epoch")[0]["epoch_time_s"]
    steps = [e["step"] for e in events(run, "step")]
    assert steps == sorted(set(steps))  # no step logged twice
    a = ckpt.load(straight.last_ckpt)
    b = ckpt.load(run.last_ckpt)
    assert a["step"] == b["step"]
    for key, value in a["model"].items():
        assert torch.allclose(value, b["model"][key], atol=1e-5), key
    assert torch.allclose(a["weighting"]["log_var"], b["weighting"]["log_var"], atol=1e-6)
    ea, eb = events(straight, "epoch")[-1], events(run, "epoch")[-1]
    assert eb["val"] == pytest.approx(ea["val"], abs=1e-4)
    assert eb["train"] == pytest.approx(ea["train"], abs=1e-4)


# --------------------------------------------------------------------------- failures


@pytest.fixture(scope="module")
def failed_runs(tiny_run, tmp_path_factory) -> dict:
    """Runs that must fail, started together (their start-up is mostly imports)."""
    ws = tmp_path_factory.mktemp("failing")
    data = tiny_run.data
    marker = ws / "pwned"
    evil = ws / "evil.pt"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"format": ckpt.FORMAT, "model": {}, "x": Payload()}, evil)
    # weights gone bad (a diverged run's file): the modulation head is NaN from step 1
    nan_weights = ws / "nan.pth"
    good = torch.load(tiny_run.run.last_ckpt, weights_only=True)["model"]
    good["mod_head.1.weight"] = torch.full_like(good["mod_head.1.weight"], float("nan"))
    torch.save(good, nan_weights)
    cut = ws / "cut.pth"  # a seed file whose copy was cut short
    cut.write_bytes(nan_weights.read_bytes()[:1000])

    def config(name: str, path: Path = data, epochs: int = 1) -> str:
        return TINY.format(name=name, data=path, epochs=epochs)

    runs = {
        "payload": make_run(ws, "payload-1", data, config=config("payload-1").replace(
            "[run]\n", f'[run]\nresume = "{evil}"\n')),
        "kwarg": make_run(ws, "kwarg-1", data, config=config("kwarg-1").replace(
            "num_heads = [1, 2]}", "num_heads = [1, 2], wndow = 3}")),
        "nan": make_run(ws, "nan-1", data, config=config("nan-1").replace(
            'dropout = 0.1\n', f'dropout = 0.1\nweights = "{nan_weights}"\n')),
        "cut-weights": make_run(ws, "cut-1", data, config=config("cut-1").replace(
            'dropout = 0.1\n', f'dropout = 0.1\nweights = "{cut}"\n')),
        "other-arch": make_run(ws, "other-1", data, config=config("other-1", epochs=2).replace(
            'arch = "swin_tiny"', 'arch = "resnet18"').replace(TINY_SWIN_TOML, "{}")),
        "no-data": make_run(ws, "nodata-1", ws / "absent.h5", config=config("nodata-1", ws / "absent.h5")),
        # a hand-written relative path, taken from the workspace, is not there
        "no-weights": make_run(ws, "noweights-1", data, config=config("noweights-1").replace(
            'dropout = 0.1\n', 'dropout = 0.1\nweights = "seeds/gone.pth"\n')),
    }  # fmt: skip
    (runs["other-arch"].checkpoints).mkdir()
    shutil.copy(tiny_run.run.last_ckpt, runs["other-arch"].last_ckpt)
    procs = {
        k: start_trainer(r, *(["--resume"] if k == "other-arch" else [])) for k, r in runs.items()
    }
    codes = {k: p.wait(timeout=180) for k, p in procs.items()}
    return {"runs": runs, "codes": codes, "marker": marker}


def _failed(failed_runs, key: str, code: int) -> tuple[str, str]:
    run = failed_runs["runs"][key]
    st = read_status(run)
    assert failed_runs["codes"][key] == code, log_text(run)[-3000:]
    assert st["state"] == "failed" and st["exit_code"] == code and st["ended_at"]
    end = events(run)[-1]
    assert end["kind"] == "end" and end["state"] == "failed"
    return st["error"], log_text(run)


def test_pickle_payload_checkpoint_is_refused_by_the_trainer(failed_runs) -> None:
    error, log = _failed(failed_runs, "payload", 2)
    assert "\n" not in error and error.startswith("run.resume: refused checkpoint ")
    assert "system" in error
    assert error in log
    assert not failed_runs["marker"].exists()  # the payload never ran


def test_rejected_kwarg_fails_at_start_with_one_line(failed_runs) -> None:
    error, log = _failed(failed_runs, "kwarg", 2)
    assert "\n" not in error and "wndow" in error and "timm rejected" in error
    assert error in log and "Traceback" not in log
    assert not events(failed_runs["runs"]["kwarg"], "epoch")


def test_nonfinite_loss_fails_naming_task_and_step(failed_runs) -> None:
    error, log = _failed(failed_runs, "nan", 1)
    assert "non-finite modulation" in error and "loss (NaN or inf) at step 1 " in error
    assert error in log
    # the health rule names it before the run fails: event, status.json, train.log
    run = failed_runs["runs"]["nan"]
    (h,) = events(run, "health")
    assert h["rule"] == "diverged" and h["active"] and h["step"] == 1 and h["epoch"] == 1
    assert h["message"].startswith("diverged: non-finite modulation")
    assert [x["rule"] for x in read_status(run)["health"]] == ["diverged"]
    assert f"health: {h['message']}" in log


def test_resume_with_another_architecture_fails_with_one_line(failed_runs) -> None:
    error, _ = _failed(failed_runs, "other-arch", 2)
    assert "\n" not in error and "swin_tiny_patch4_window7_224" in error and "resnet18" in error


def test_missing_weights_file_fails_naming_the_key(failed_runs) -> None:
    error, log = _failed(failed_runs, "no-weights", 2)
    assert error.startswith("model.weights = 'seeds/gone.pth': no such file (")
    assert error.endswith("seeds/gone.pth)") and "\n" not in error and error in log
    assert "data:" not in log  # failed before the data load


def test_missing_data_file_fails_with_the_synth_hint(failed_runs) -> None:
    error, _ = _failed(failed_runs, "no-data", 2)
    assert "\n" not in error and "absent.h5" in error and "synth" in error
    assert error.startswith("data.path: ")


def test_unreadable_weights_file_fails_naming_the_key(failed_runs) -> None:
    error, log = _failed(failed_runs, "cut-weights", 2)
    cut = failed_runs["runs"]["payload"].path.parents[1] / "cut.pth"
    assert error.startswith(f"model.weights: cannot read checkpoint {cut}: corrupt or truncated")
    assert "\n" not in error and error in log
