"""refs.resolve_checkpoint: what `run.resume` and `model.weights` may name when a run is
created (a file, a run directory, a run name, id or prefix), resolved to one absolute file."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs_fixtures import make_fake_run, runs_workspace

from amc_tui.errors import UserError
from amc_tui.run.refs import resolve_checkpoint
from amc_tui.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = runs_workspace(tmp_path)
    old = make_fake_run(ws, "calm-sea-1", run_id="k3x9a0b2", exports=False)
    old.last_ckpt.unlink()
    old.best_ckpt.write_bytes(b"best")
    other = make_fake_run(ws, "other-run-2", run_id="z9z9z9z9", exports=False)
    other.last_ckpt.unlink()  # no checkpoint at all
    return ws


def test_a_file_absolute_or_relative_to_the_workspace(ws: Workspace) -> None:
    seed = ws.root / "seeds" / "best_model_swin_tiny_epoch_1.pth"
    seed.parent.mkdir()
    seed.write_bytes(b"x")
    for ref in (str(seed), "seeds/best_model_swin_tiny_epoch_1.pth"):
        path, record = resolve_checkpoint(ws, ref, "model.weights")
        assert path == seed.resolve() and path.is_absolute()
        assert record == {"id": None, "name": None, "checkpoint": str(seed.resolve())}


def test_a_run_by_directory_name_id_or_prefix(ws: Workspace) -> None:
    run = ws.runs / "calm-sea-1"
    best = (run / "checkpoints" / "best.pt").resolve()
    refs = (str(run), "runs/calm-sea-1", "calm-sea-1", "k3x9a0b2", "k3x9", "calm-s")
    for ref in refs:  # no last.pt yet: best.pt
        path, record = resolve_checkpoint(ws, ref, "run.resume")
        assert path == best, ref
        assert record == {"id": "k3x9a0b2", "name": "calm-sea-1", "checkpoint": str(best)}
    (run / "checkpoints" / "last.pt").write_bytes(b"last")
    for ref in refs:  # last.pt wins once it exists
        assert resolve_checkpoint(ws, ref, "run.resume")[0] == best.with_name("last.pt"), ref
    path, _ = resolve_checkpoint(ws, "runs/calm-sea-1/checkpoints/best.pt", "run.resume")
    assert path == best  # a file inside a run is taken as named


def test_missing_references_name_the_key(ws: Workspace) -> None:
    with pytest.raises(UserError) as e:
        resolve_checkpoint(ws, "nobody-9", "model.weights")
    msg = str(e.value)
    assert msg.startswith("model.weights = 'nobody-9': not a checkpoint file") and "\n" not in msg
    with pytest.raises(UserError) as e:
        resolve_checkpoint(ws, "other-run-2", "run.resume")
    msg = str(e.value)
    assert msg.startswith(
        "run.resume = 'other-run-2': run other-run-2 (z9z9z9z9) has no checkpoint"
    )
    with pytest.raises(UserError, match=r"^run\.resume = 'seeds/gone\.pth'"):
        resolve_checkpoint(ws, "seeds/gone.pth", "run.resume")
