"""RUNLOG.md entries (DESIGN section 6), rendered from a run's own files alone.

An entry is a pure function of the run directory (config.toml, status.json, meta.json, the
first `start` event, export/*/summary.json and per_cell.csv), so the trainer (after each epoch
and at the end), the launcher (crashed/stopped runs) and `amc-tui runlog sync` all write the
same bytes. Writers take a file lock and replace RUNLOG.md atomically; text outside the
`<!-- amc-tui:begin/end ID -->` markers is the user's and is kept byte for byte.

The trainer imports this module: no textual, no tomli_w, no torch here or in what it imports.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from amc_tui.analysis import (
    export_trajectory,
    findings,
    hardest_cells,
    latest_export,
    read_per_cell,
    read_summary,
)
from amc_tui.fsutil import atomic_write_bytes
from amc_tui.runs import (
    RunDir,
    derive_state,
    first_event,
    read_config_dict,
    read_meta,
    read_status,
    run_workspace,
)

BEGIN = "<!-- amc-tui:begin {id} -->"
END = "<!-- amc-tui:end {id} -->"
_BEGIN_RE = re.compile(r"<!-- amc-tui:begin (\S+) -->")
HEADER = (
    "# RUNLOG\n\n"
    "Training runs of this workspace. amc-tui keeps one entry per run between its markers;\n"
    "everything outside the markers is yours and is never changed.\n"
)
LOCK_TIMEOUT_S = 60.0
ICONS = {
    "queued": "⏳", "running": "🔄", "completed": "✅", "failed": "❌", "stopped": "⏹️",
    "crashed": "💥",
}  # fmt: skip
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip


# --------------------------------------------------------------------------- formatting


def fmt_date(t: Any) -> str:
    """June 25, 2025, 15:10:43 UTC (locale-independent, so every writer agrees)."""
    if not isinstance(t, int | float):
        return "?"
    g = time.gmtime(float(t))
    return f"{MONTHS[g.tm_mon - 1]} {g.tm_mday}, {g.tm_year}, {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} UTC"


def _pct(v: Any) -> str:
    return "–" if not isinstance(v, int | float) else f"{100 * float(v):.2f}%"


def _num(v: Any, spec: str = ".3f") -> str:
    return "–" if not isinstance(v, int | float) else f"{float(v):{spec}}"


def _share(v: Any) -> str:
    return "–" if not isinstance(v, int | float) else f"{100 * float(v):.1f}%"


def _count(v: Any) -> str:
    return "?" if not isinstance(v, int | float) else f"{int(v):,}"


def _g(v: Any) -> str:
    return "?" if not isinstance(v, int | float) else f"{v:g}"


def _dig(obj: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return default
        obj = obj[part]
    return obj


def runlog_path_for(run_dir: str | os.PathLike[str]) -> Path:
    """The workspace RUNLOG.md of a run: meta.json "workspace", else two folders up."""
    return run_workspace(RunDir(Path(run_dir))) / "RUNLOG.md"


# --------------------------------------------------------------------------- render


def _split_sizes(start: dict[str, Any] | None, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    if start and any(isinstance(start.get(f"n_{k}"), int) for k in ("train", "val", "test")):
        return {k: start.get(f"n_{k}") for k in ("train", "val", "test")}
    for s in summaries:
        sizes = s.get("split_sizes") or s.get("sizes")
        if isinstance(sizes, dict):
            return {k: sizes.get(k) for k in ("train", "val", "test")}
        if any(isinstance(s.get(f"n_{k}"), int) for k in ("train", "val", "test")):
            return {k: s.get(f"n_{k}") for k in ("train", "val", "test")}
    return {}


def _test_metrics(summary: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("test", "metrics"):
        if isinstance(summary.get(key), dict):
            return summary[key]
    if summary.get("split") == "test" and isinstance(summary.get("val"), dict):
        return summary["val"]
    return None


def render_entry(run_dir: str | os.PathLike[str]) -> str:
    """The run's RUNLOG entry, markers included, ending with a newline."""
    rd = RunDir(Path(run_dir))
    status, meta, cfg = read_status(rd), read_meta(rd), read_config_dict(rd)
    run_id = str(meta.get("id") or status.get("id") or rd.name)
    name = str(meta.get("name") or rd.name)
    state = derive_state(status) if status else "queued"
    start = first_event(rd.events, "start")
    traj = export_trajectory(rd.path)
    export_names = [n for n in (latest_export(rd.path),) if n]
    summaries = [read_summary(rd.export / n) for n in export_names]
    epoch = max([int(status.get("epoch") or 0)] + [r["epoch"] for r in traj])
    epochs = status.get("epochs") or _dig(cfg, "train.epochs") or meta.get("epochs")
    select = _dig(cfg, "train.select_metric", "val.acc_combined")
    restarts = int(status.get("restarts") or 0)

    L: list[str] = [BEGIN.format(id=run_id), f"## {name} ({run_id})", ""]
    # status line
    when = []
    started = status.get("first_started_at") or status.get("started_at")
    if started is not None:
        when.append(f"started {fmt_date(started)}")
    elif meta.get("created_at") is not None:
        when.append(f"created {fmt_date(meta['created_at'])}")
    if state not in ("running", "queued") and status.get("ended_at") is not None:
        when.append(f"ended {fmt_date(status['ended_at'])}")
    when.append(f"epoch {epoch}/{epochs if epochs else '?'}")
    L.append(f"**Status**: {ICONS.get(state, '')} **{state.upper()}** ({'; '.join(when)})  ")
    arch = _dig(cfg, "model.arch", meta.get("arch") or "?")
    params = (start or {}).get("params")
    if params is None:
        params = next((s.get("params") for s in summaries if s.get("params")), None)
    from amc_tui.config import resolve_arch

    timm_name = resolve_arch(str(arch))
    arch_bits = [timm_name] if timm_name != arch else []
    if isinstance(params, int | float):
        arch_bits.append(f"{params / 1e6:.2f}M parameters")
    L.append(
        f"**Architecture**: {arch}" + (f" ({', '.join(arch_bits)})" if arch_bits else "") + "  "
    )
    L.append(f"**Phase**: {cfg.get('phase') or meta.get('phase') or '–'}  ")
    notes = cfg.get("notes") or meta.get("notes")
    if notes:
        L.append(f"**Notes**: {' '.join(str(notes).split())}  ")
    tags = cfg.get("tags") or meta.get("tags")
    if tags:
        L.append(f"**Tags**: {', '.join(str(t) for t in tags)}  ")
    if state in ("failed", "crashed") and status.get("error"):
        lines = [ln for ln in str(status["error"]).strip().splitlines() if ln.strip()]
        if lines:
            pick = lines[-1] if lines[0].startswith("Traceback") else lines[0]
            last_line = pick.strip().replace("`", "'")
            L.append(f"**Error**: `{last_line}`  ")
    L[-1] = L[-1].rstrip()

    # configuration
    rf = meta.get("resumed_from")
    if isinstance(rf, dict) and (rf.get("checkpoint") or rf.get("name")):
        who = f" ({rf['name']}, {rf['id']})" if rf.get("name") else ""
        resumed = f"`{Path(str(rf.get('checkpoint') or '')).name or '?'}`{who}"
    elif _dig(cfg, "run.resume"):
        resumed = f"`{_dig(cfg, 'run.resume')}`"
    else:
        resumed = (
            "none (fresh weights)"
            if not _dig(cfg, "model.weights")
            else f"weights `{_dig(cfg, 'model.weights')}`"
        )
    L += [
        "",
        "### Configuration",
        f"- **Model**: {arch}, image {_dig(cfg, 'image.size', '?')} px x {_dig(cfg, 'image.channels', '?')} ch, "
        f"range ±{_g(_dig(cfg, 'image.range'))}, normalize {_dig(cfg, 'image.normalize', '?')}",
        f"- **Training**: Batch={_dig(cfg, 'train.batch_size', '?')}, LR={_g(_dig(cfg, 'train.lr'))}, "
        f"Dropout={_g(_dig(cfg, 'model.dropout'))}, Weight Decay={_g(_dig(cfg, 'train.weight_decay'))}, "
        f"Epochs={_dig(cfg, 'train.epochs', '?')}, Optimizer={_dig(cfg, 'train.optimizer', '?')}, "
        f"Scheduler={_dig(cfg, 'train.scheduler', '?')}, AMP={_dig(cfg, 'train.amp', '?')}, "
        f"Seed={_dig(cfg, 'train.seed', '?')}",
        f"- **Loss**: {_dig(cfg, 'loss.weighting', '?')} weighting, SNR distance weight "
        f"{_g(_dig(cfg, 'loss.snr_distance_weight'))}; best epoch by `{select}`",
        f"- **Resumed from**: {resumed}",
    ]
    restart = _dig(cfg, "run.restart", "never")
    if restart != "never" or restarts:
        L.append(
            f"- **Restarts**: {restarts} of at most {_dig(cfg, 'run.max_restarts', '?')} (restart = {restart})"
        )
    device = status.get("device") or _dig(cfg, "run.device", "?")
    gpus = status.get("assigned_gpus") or status.get("gpus")
    L.append(
        f"- **Device**: {device}" + (f" (GPU {', '.join(str(g) for g in gpus)})" if gpus else "")
    )
    if meta.get("config_hash"):
        L.append(f"- **Config hash**: `{meta['config_hash']}`")

    # dataset
    sizes = _split_sizes(start, summaries)
    split = _dig(cfg, "data.split", [])
    classes = (start or {}).get("classes") or next(
        (s.get("classes") for s in summaries if s.get("classes")), None
    )
    snrs = (start or {}).get("snrs") or next(
        (s.get("snrs") for s in summaries if s.get("snrs")), None
    )
    if not classes:
        from amc_tui.data.classes import resolve_classes

        try:
            classes = resolve_classes(_dig(cfg, "data.classes", "digital"))
        except ValueError:
            classes = []
    if not snrs:
        lo, hi = _dig(cfg, "data.snr_min", -20), _dig(cfg, "data.snr_max", 30)
        snrs = list(range(int(lo), int(hi) + 1, 2))
    L += ["", "### Dataset", f"- **File**: `{_dig(cfg, 'data.path', '?')}`"]
    split_txt = "/".join(f"{100 * float(x):.0f}%" for x in split) if split else "?"
    if sizes and all(isinstance(sizes.get(k), int) for k in ("train", "val", "test")):
        total = sum(int(sizes[k]) for k in ("train", "val", "test"))
        L.append(
            f"- **Samples**: {total:,} total ({split_txt} split: {sizes['train']:,} train / "
            f"{sizes['val']:,} val / {sizes['test']:,} test)"
        )
    else:
        L.append(f"- **Samples**: pending ({split_txt} split)")
    fpc = _dig(cfg, "data.frames_per_cell", 0)
    L.append(
        f"- **Classes**: {len(classes)} modulations x {len(snrs)} SNR levels "
        f"({min(snrs) if snrs else '?'}..{max(snrs) if snrs else '?'} dB) = {len(classes) * len(snrs)} combinations"
    )
    L.append(f"- **Modulations**: {', '.join(str(c) for c in classes)}")
    L.append(
        f"- **Frames per cell**: {'all' if not fpc else f'at most {fpc}'}; "
        f"**Shuffle**: {'yes' if _dig(cfg, 'data.shuffle', True) else 'no'}; "
        f"**Split seed**: {_dig(cfg, 'data.split_seed', '?')}"
    )

    # trajectory
    best_epoch = _dig(status, "best.epoch")
    L += ["", "### Training Trajectory"]
    if traj:
        L += [
            "| Epoch | Val comb | Val mod | Val SNR | Val loss | Train comb | Train mod | Train SNR | Train loss | w mod | w SNR |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in traj:
            mark = " ★" if r["epoch"] == best_epoch or (best_epoch is None and r["is_best"]) else ""
            L.append(
                f"| {r['epoch']}{mark} | {_pct(r['val_acc_combined'])} | {_pct(r['val_acc_mod'])} | "
                f"{_pct(r['val_acc_snr'])} | {_num(r['val_loss'])} | {_pct(r['train_acc_combined'])} | "
                f"{_pct(r['train_acc_mod'])} | {_pct(r['train_acc_snr'])} | {_num(r['train_loss'])} | "
                f"{_share(r['w_mod'])} | {_share(r['w_snr'])} |"
            )
        if best_epoch is not None:
            L.append(
                f"\n★ best epoch by `{select}`: {best_epoch} ({_fmt_metric(select, _dig(status, 'best.value'))})"
            )
    else:
        L.append("_No epoch finished yet._")

    # final metrics
    if traj:
        last = traj[-1]
        live = state in ("running", "queued")
        L += [
            "",
            f"### {'Latest' if live else 'Final'} Metrics (Epoch {last['epoch']}{', live' if live else ''})",
        ]
        L += [
            f"**Combined Accuracy**: {_pct(last['val_acc_combined'])} validation vs {_pct(last['train_acc_combined'])} training  ",
            f"**Modulation**: {_pct(last['val_acc_mod'])} validation vs {_pct(last['train_acc_mod'])} training  ",
            f"**SNR**: {_pct(last['val_acc_snr'])} validation vs {_pct(last['train_acc_snr'])} training  ",
            f"**SNR within one bin**: {_pct(last['val_snr_within_1'])} validation vs {_pct(last['train_snr_within_1'])} training  ",
            f"**SNR MAE**: {_num(last['val_snr_mae_db'], '.2f')} dB validation vs {_num(last['train_snr_mae_db'], '.2f')} dB training  ",
            f"**Loss**: {_num(last['val_loss'])} validation vs {_num(last['train_loss'])} training",
        ]
        final = read_summary(rd.final_export) if rd.final_export.is_dir() else {}
        test = _test_metrics(final) if final else None
        if test:
            L.append(
                f"\n**Test** (best checkpoint, epoch {final.get('epoch', '?')}): combined {_pct(test.get('acc_combined'))}, "
                f"modulation {_pct(test.get('acc_mod'))}, SNR {_pct(test.get('acc_snr'))}, "
                f"SNR MAE {_num(test.get('snr_mae_db'), '.2f')} dB, loss {_num(test.get('loss'))}"
            )

        # multi-task weighting
        if last.get("w_mod") is not None or last.get("u_mod") is not None:
            L += [
                "",
                "### Multi-Task Weighting",
                f"Scheme: {_dig(cfg, 'loss.weighting', '?')} (epoch {last['epoch']})",
                "",
            ]
            for task, label in (("mod", "Modulation"), ("snr", "SNR")):
                w, u = last.get(f"w_{task}"), last.get(f"u_{task}")
                flag = " ← **Underweighted**" if isinstance(w, float) and w < 0.40 else ""
                unc = f" (uncertainty: {_num(u)})" if u is not None else ""
                L.append(f"- **{label}**: {_share(w)} weight{unc}{flag}")

    # hardest cells
    if export_names:
        ename = export_names[0]
        cells = hardest_cells(read_per_cell(rd.export / ename), n=5)
        if cells:
            s = summaries[0]
            split_name = s.get("split") or ("test" if ename == "final" else "val")
            L += [
                "",
                f"### Hardest Cells ({split_name}, {'final' if ename == 'final' else 'epoch ' + str(s.get('epoch', ename[6:].lstrip('0')))})",
                "| Modulation | SNR (dB) | n | Combined | Modulation acc | SNR acc | SNR MAE (dB) |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for c in cells:
                L.append(
                    f"| {c['modulation']} | {c['snr_db']} | {c['n']} | {_pct(c['acc_combined'])} | "
                    f"{_pct(c['acc_mod'])} | {_pct(c['acc_snr'])} | {_num(c['snr_mae_db'], '.2f')} |"
                )

    # findings
    found = findings(
        traj,
        select_metric=select,
        state=state,
        epochs=epochs if isinstance(epochs, int) else None,
        baseline=meta.get("baseline") if isinstance(meta.get("baseline"), dict) else None,
        config=cfg,
        restarts=restarts,
    )
    if found:
        icons = {"good": "✅", "warn": "⚠️", "info": "🔍"}
        L += ["", "### Findings"]
        L += [f"- {icons.get(f.level, '-')} {f.text} (rule: `{f.rule}`)" for f in found]
    L += ["", "---", END.format(id=run_id)]
    return "\n".join(L) + "\n"


def _fmt_metric(select: str, value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    return _pct(value) if "acc" in select or "within" in select else f"{float(value):.4g}"


# --------------------------------------------------------------------------- file ops


def entry_offsets(text: str) -> dict[str, tuple[int, int]]:
    """{run id: (start, end)} character offsets of each entry, end marker and its newline
    included. A begin marker with no end marker spans only its own line."""
    out: dict[str, tuple[int, int]] = {}
    for m in _BEGIN_RE.finditer(text):
        run_id = m.group(1)
        if run_id in out:
            continue
        end_marker = END.format(id=run_id)
        stop = text.find(end_marker, m.end())
        nxt = _BEGIN_RE.search(text, m.end())
        if stop < 0 or (nxt is not None and nxt.start() < stop):
            eol = text.find("\n", m.end())
            out[run_id] = (m.start(), len(text) if eol < 0 else eol + 1)
            continue
        end = stop + len(end_marker)
        if text.startswith("\n", end):
            end += 1
        out[run_id] = (m.start(), end)
    return out


def _lock(path: Path) -> FileLock:
    return FileLock(path.with_name(f".{path.name}.lock"), timeout=LOCK_TIMEOUT_S)


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def _write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))  # keeps the file's mode


def _merge(text: str, entries: dict[str, str]) -> tuple[str, list[str]]:
    """`text` with each entry replaced in place or appended; (new text, ids changed).
    One pass over the offsets, so syncing 1,000 entries stays linear."""
    offsets = entry_offsets(text)
    changed: list[str] = []
    pieces: list[str] = []
    pos = 0
    for (a, b), run_id in sorted((offsets[i], i) for i in entries if i in offsets):
        pieces.append(text[pos:a])
        pieces.append(entries[run_id])
        if text[a:b] != entries[run_id]:
            changed.append(run_id)
        pos = b
    pieces.append(text[pos:])
    out = "".join(pieces)
    for run_id, entry in entries.items():
        if run_id in offsets:
            continue
        if out and not out.endswith("\n"):
            out += "\n"
        if out and not out.endswith("\n\n"):
            out += "\n"
        out += entry
        changed.append(run_id)
    return (out if changed else text), changed


def sync_entries(runlog_path: str | os.PathLike[str], entries: dict[str, str]) -> list[str]:
    """Write rendered entries into RUNLOG.md under the lock; ids whose entry changed."""
    path = Path(runlog_path)
    with _lock(path):
        old = _read(path)
        new, changed = _merge(HEADER if old is None else old, entries)
        if changed or old is None:
            _write(path, new)
    return changed


def sync_entry(
    run_dir: str | os.PathLike[str], runlog_path: str | os.PathLike[str] | None = None
) -> bool:
    """Render the run's entry and put it in RUNLOG.md (in place, or appended); True when the
    file changed. Safe to call from any process at any time."""
    entry = render_entry(run_dir)
    run_id = _BEGIN_RE.match(entry).group(1)  # type: ignore[union-attr]
    path = Path(runlog_path) if runlog_path else runlog_path_for(run_dir)
    return bool(sync_entries(path, {run_id: entry}))


def sync_all(ws: Any) -> list[str]:
    """Rebuild missing or stale entries for every started run of the workspace; ids changed
    (nothing is written when all are current)."""
    from amc_tui.runs import run_dirs

    dirs = []
    for d in run_dirs(ws):
        status = read_status(RunDir(d))
        if status.get("started_at") is not None:
            meta = read_meta(RunDir(d))
            dirs.append((meta.get("created_at") or status.get("started_at") or 0, d.name, d))
    dirs.sort(key=lambda x: (float(x[0]) if isinstance(x[0], int | float) else 0.0, x[1]))
    entries: dict[str, str] = {}
    for _, _, d in dirs:
        entry = render_entry(d)
        entries[_BEGIN_RE.match(entry).group(1)] = entry  # type: ignore[union-attr]
    if not entries:
        return []
    return sync_entries(ws.runlog, entries)
