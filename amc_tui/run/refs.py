"""What a user's reference names: a run (name, id or unique prefix) or a checkpoint file.

Resolved once, where the user's words enter (commands, run creation), so the trainer and the
readers deal in paths only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amc_tui.errors import UserError
from amc_tui.run.rundir import META_FILE, RunInfo, _sort_key, is_run_dir, read_run, run_dirs
from amc_tui.workspace import Workspace


def _brief(info: RunInfo) -> str:
    return f"{info.name} ({info.id})"


def resolve_run(ws: Workspace, ref: str) -> RunInfo:
    """A run by name, id, or a unique prefix of either; UserError listing candidates else."""
    ref = (ref or "").strip()
    if not ref:
        raise UserError("empty run reference; give a run name, id or prefix")
    direct = ws.runs / ref
    if "/" not in ref and ref not in (".", "..") and not ref.startswith(".") and direct.is_dir():
        if not is_run_dir(direct):
            raise UserError(
                f"{ws.runs / ref} is not a run (no config.toml + meta.json): amc-tui leaves it alone"
            )
        return read_run(direct)
    runs = [read_run(p, with_last_epoch=False) for p in run_dirs(ws)]
    runs.sort(key=_sort_key, reverse=True)
    exact = [r for r in runs if ref in (r.name, r.id)]
    if len(exact) == 1:
        return read_run(exact[0].dir)
    matches = exact or [r for r in runs if r.name.startswith(ref) or r.id.startswith(ref)]
    if len(matches) == 1:
        return read_run(matches[0].dir)
    if not matches:
        near = ", ".join(_brief(r) for r in runs[:8]) or "none (runs/ is empty)"
        more = f" and {len(runs) - 8} more" if len(runs) > 8 else ""
        raise UserError(f"no run matches {ref!r}; runs: {near}{more}")
    listed = ", ".join(_brief(r) for r in matches[:8])
    more = f" and {len(matches) - 8} more" if len(matches) > 8 else ""
    raise UserError(f"{ref!r} is ambiguous: {listed}{more}")


def resolve_checkpoint(ws: Workspace, ref: str, key: str) -> tuple[Path, dict[str, Any]]:
    """A checkpoint reference as the user wrote it in `key` (`run.resume`, `model.weights`):
    a file (relative to the workspace), a run directory, or a run name, id or prefix, whose
    last.pt (else best.pt) is taken. Returns the absolute file and the record meta.json keeps
    ({id, name, checkpoint}); a reference that resolves to nothing is a UserError naming `key`.
    Resolved once, when a run is created: the trainer receives a file path."""
    p = ws.resolve(ref)
    if p.is_file():
        path = p.resolve()
        return path, {"id": None, "name": None, "checkpoint": str(path)}
    if p.is_dir() and (p / META_FILE).is_file():
        src = read_run(p, with_last_epoch=False)
    else:
        try:
            src = resolve_run(ws, ref)
        except UserError as e:
            raise UserError(f"{key} = {ref!r}: not a checkpoint file, and {e}") from None
    rd = src.rundir
    for ckpt in (rd.last_ckpt, rd.best_ckpt):
        if ckpt.is_file():
            path = ckpt.resolve()
            return path, {"id": src.id, "name": src.name, "checkpoint": str(path)}
    raise UserError(
        f"{key} = {ref!r}: run {src.name} ({src.id}) has no checkpoint in {rd.checkpoints}"
    )
