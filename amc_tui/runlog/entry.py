"""The body of a run's RUNLOG entry (DESIGN section 6), one function per section.

Everything comes from the run's own files (config.toml, status.json, meta.json, the first
`start` event, the latest export), read once into an `EntrySource`, so every writer renders
the same bytes. Values read through `report`, with `–` as the missing mark of the Markdown.
`runlog` wraps the body in the entry markers and writes it.

The trainer imports this module: no textual, no tomli_w, no torch here or in what it imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from amc_tui import contract, report
from amc_tui.config import resolve_arch
from amc_tui.data.classes import resolve_classes, snr_range
from amc_tui.run import saliency, tables
from amc_tui.run.analysis import (
    UNDERWEIGHT_SHARE,
    export_trajectory,
    findings,
    latest_export,
    read_summary,
)
from amc_tui.run.rundir import (
    RunDir,
    RunInfo,
    dig,
    first_event,
    read_config_dict,
    read_meta,
    read_run,
    read_status,
)
from amc_tui.sweeps.sweep import point_label

ICONS = {
    "queued": "⏳", "submitted": "📤", "running": "🔄", "completed": "✅", "failed": "❌", "stopped": "⏹️",
    "crashed": "💥",
}  # fmt: skip
FINDING_ICONS = {"bad": "❌", "good": "✅", "warn": "⚠️", "info": "🔍"}
DASH = "–"
_pct = partial(report.pct, missing=DASH)
_num = partial(report.num, missing=DASH)
_share = partial(report.pct, digits=1, missing=DASH)


def _g(v: Any) -> str:
    """A config number as written (`1e-05`, `0.0001`)."""
    return report.num(v, "g", missing="?")


# --------------------------------------------------------------------------- source


@dataclass(frozen=True)
class EntrySource:
    """A run's files as the entry needs them: the run as listed plus its raw dicts, the
    first start event and the latest export."""

    run: RunInfo
    status: dict[str, Any]
    meta: dict[str, Any]
    cfg: dict[str, Any]
    start: dict[str, Any]
    traj: list[dict[str, Any]]
    export: str | None  # name of the latest export folder
    summary: dict[str, Any]  # its summary.json
    cell_tables: tuple[str, tables.Tables] | None = None  # its label and tables (`_tables`)

    def conf(self, dotted: str, default: Any = None) -> Any:
        """A config.toml value by dotted path (TOML has no null, so None means absent)."""
        value = dig(self.cfg, dotted)
        return default if value is None else value

    @property
    def epoch(self) -> int:
        return max([self.run.epoch] + [r["epoch"] for r in self.traj])

    @property
    def epochs(self) -> Any:
        return self.status.get("epochs") or self.conf("train.epochs") or self.meta.get("epochs")

    @property
    def select(self) -> str:
        return str(self.conf("train.select_metric", contract.DEFAULT_SELECT))

    @property
    def arch(self) -> str:
        return str(self.conf("model.arch", self.meta.get("arch") or "?"))

    @property
    def live(self) -> bool:
        return self.run.state in ("running", "queued", "submitted", "stalled")


def read_source(run_dir: str | os.PathLike[str]) -> EntrySource:
    rd = RunDir(Path(run_dir))
    export = latest_export(rd.path)
    return EntrySource(
        run=read_run(rd.path, with_last_epoch=False),
        status=read_status(rd),
        meta=read_meta(rd),
        cfg=read_config_dict(rd),
        start=first_event(rd.events, "start") or {},
        traj=export_trajectory(rd.path),
        export=export,
        summary=(summary := read_summary(rd.export / export) if export else {}),
        cell_tables=_export_tables(rd, export, summary),
    )


def _export_tables(
    rd: RunDir, name: str | None, summary: dict[str, Any]
) -> tuple[str, tables.Tables] | None:
    """The export's tables (read once for the three sections) and its label (`test, final`,
    `val, epoch 3`)."""
    if not name:
        return None
    final = name == contract.FINAL_EXPORT
    split = summary.get("split") or ("test" if final else "val")
    which = "final" if final else "epoch " + str(summary.get("epoch", name[6:].lstrip("0")))
    return f"{split}, {which}", tables.export_tables(rd.export / name)


def _from_run(src: EntrySource, key: str) -> Any:
    """A value of the start event, else of the export summary (None when neither has it)."""
    return src.start.get(key) or src.summary.get(key) or None


# --------------------------------------------------------------------------- sections


def header(src: EntrySource) -> list[str]:
    """Title, status line, architecture, phase, notes, tags, error."""
    run, status, meta, cfg = src.run, src.status, src.meta, src.cfg
    when = []
    started = status.get("first_started_at") or status.get("started_at")
    if started is not None:
        when.append(f"started {report.utc_date(started)}")
    elif meta.get("created_at") is not None:
        when.append(f"created {report.utc_date(meta['created_at'])}")
    if not src.live and status.get("ended_at") is not None:
        when.append(f"ended {report.utc_date(status['ended_at'])}")
    if not src.live and run.elapsed_s() is not None:  # an ended run's: as `show` and the app
        when.append(f"elapsed {report.duration(run.elapsed_s())}")
    when.append(f"epoch {src.epoch}/{src.epochs if src.epochs else '?'}")
    L = [
        f"## {run.name} ({run.id})",
        "",
        f"**Status**: {ICONS.get(run.state, '')} **{run.state.upper()}** ({'; '.join(when)})  ",
    ]

    timm_name = resolve_arch(src.arch)
    bits = [timm_name] if timm_name != src.arch else []
    params = _from_run(src, "params")
    if contract.is_number(params):
        bits.append(f"{params / 1e6:.2f}M parameters")
    L.append(f"**Architecture**: {src.arch}" + (f" ({', '.join(bits)})" if bits else "") + "  ")
    L.append(f"**Phase**: {cfg.get('phase') or meta.get('phase') or DASH}  ")
    notes = cfg.get("notes") or meta.get("notes")
    if notes:
        L.append(f"**Notes**: {' '.join(str(notes).split())}  ")
    tags = cfg.get("tags") or meta.get("tags")
    if tags:
        L.append(f"**Tags**: {', '.join(str(t) for t in tags)}  ")
    if run.slurm_job_id:  # where it ran: the Slurm job (its log is in the run's slurm/)
        how = f"ended {status['slurm_state']}" if status.get("slurm_state") else "open"
        L.append(f"**Slurm**: job {run.slurm_job_id} ({how})  ")
    if isinstance(meta.get("group"), str):  # a sweep member names its group and point
        point = meta["point"] if isinstance(meta.get("point"), dict) else {}
        L.append(f"**Group**: {meta['group']}, point {point_label(point)}, "
                 f"repeat {meta.get('repeat', '?')}  ")  # fmt: skip
    if run.state in ("failed", "crashed") and run.error:
        lines = [ln for ln in run.error.strip().splitlines() if ln.strip()]
        if lines:
            pick = lines[-1] if lines[0].startswith("Traceback") else lines[0]
            shown = pick.strip().replace("`", "'")
            L.append(f"**Error**: `{shown}`  ")
    L[-1] = L[-1].rstrip()
    return L


def _resumed_from(src: EntrySource) -> str:
    rf = src.run.resumed_from
    if rf and (rf.get("checkpoint") or rf.get("name")):
        who = f" ({rf['name']}, {rf['id']})" if rf.get("name") else ""
        return f"`{Path(str(rf.get('checkpoint') or '')).name or '?'}`{who}"
    if src.conf("run.resume"):
        return f"`{src.conf('run.resume')}`"
    weights = src.conf("model.weights")
    return f"weights `{weights}`" if weights else "none (fresh weights)"


def configuration(src: EntrySource) -> list[str]:
    """Model, training, loss, where the weights came from, restarts, device, config hash."""
    c = src.conf
    L = [
        "",
        "### Configuration",
        f"- **Model**: {src.arch}, image {c('image.size', '?')} px x {c('image.channels', '?')} ch, "
        f"range ±{_g(c('image.range'))}, normalize {c('image.normalize', '?')}",
        f"- **Training**: Batch={c('train.batch_size', '?')}, LR={_g(c('train.lr'))}, "
        f"Dropout={_g(c('model.dropout'))}, Weight Decay={_g(c('train.weight_decay'))}, "
        f"Epochs={c('train.epochs', '?')}, Optimizer={c('train.optimizer', '?')}, "
        f"Scheduler={c('train.scheduler', '?')}, AMP={c('train.amp', '?')}, "
        f"Seed={c('train.seed', '?')}",
        f"- **Loss**: {c('loss.weighting', '?')} weighting, SNR distance weight "
        f"{_g(c('loss.snr_distance_weight'))}; best epoch by `{src.select}`",
        f"- **Resumed from**: {_resumed_from(src)}",
    ]
    restart, restarts = c("run.restart", "never"), src.run.restarts
    if restart != "never" or restarts:
        L.append(
            f"- **Restarts**: {restarts} of at most {c('run.max_restarts', '?')} (restart = {restart})"
        )
    device = src.run.device or c("run.device", "?")
    gpus = src.run.assigned_gpus or src.run.gpus
    L.append(f"- **Device**: {device}" + (f" (GPU {', '.join(map(str, gpus))})" if gpus else ""))
    if src.meta.get("config_hash"):
        L.append(f"- **Config hash**: `{src.meta['config_hash']}`")
    return L


def _split_sizes(src: EntrySource) -> dict[str, Any]:
    keys = ("train", "val", "test")
    if any(isinstance(src.start.get(f"n_{k}"), int) for k in keys):
        return {k: src.start.get(f"n_{k}") for k in keys}
    s = src.summary
    sizes = s.get("split_sizes") or s.get("sizes")
    if isinstance(sizes, dict):
        return {k: sizes.get(k) for k in keys}
    if any(isinstance(s.get(f"n_{k}"), int) for k in keys):
        return {k: s.get(f"n_{k}") for k in keys}
    return {}


def _grid(src: EntrySource) -> tuple[list[Any], list[Any]]:
    """The (classes, SNRs) the run trains on: from its start event or export, else what its
    config selects from the dataset's class table and SNR grid."""

    classes = _from_run(src, "classes")
    if not classes:
        try:
            classes = resolve_classes(src.conf("data.classes", "digital"))
        except ValueError:
            classes = []
    snrs = _from_run(src, "snrs") or snr_range(
        int(src.conf("data.snr_min", -20)), int(src.conf("data.snr_max", 30))
    )
    return list(classes), list(snrs)


def dataset(src: EntrySource) -> list[str]:
    """File, split sizes, the class x SNR grid, frames per cell, shuffle and split seed."""
    c = src.conf
    L = ["", "### Dataset", f"- **File**: `{c('data.path', '?')}`"]
    split = c("data.split", [])
    split_txt = "/".join(report.pct(x, 0, "?") for x in split) if split else "?"
    sizes = _split_sizes(src)
    if sizes and all(isinstance(sizes.get(k), int) for k in ("train", "val", "test")):
        total = sum(int(sizes[k]) for k in ("train", "val", "test"))
        L.append(
            f"- **Samples**: {total:,} total ({split_txt} split: {sizes['train']:,} train / "
            f"{sizes['val']:,} val / {sizes['test']:,} test)"
        )
    else:
        L.append(f"- **Samples**: pending ({split_txt} split)")
    classes, snrs = _grid(src)
    lo, hi = (min(snrs), max(snrs)) if snrs else ("?", "?")
    fpc = c("data.frames_per_cell", 0)
    L += [
        f"- **Classes**: {len(classes)} modulations x {len(snrs)} SNR levels "
        f"({lo}..{hi} dB) = {len(classes) * len(snrs)} combinations",
        f"- **Modulations**: {', '.join(str(x) for x in classes)}",
        f"- **Frames per cell**: {'all' if not fpc else f'at most {fpc}'}; "
        f"**Shuffle**: {'yes' if c('data.shuffle', True) else 'no'}; "
        f"**Split seed**: {c('data.split_seed', '?')}",
    ]
    return L


def trajectory(src: EntrySource) -> list[str]:
    """One table row per finished epoch, the best marked, and the best epoch's value."""
    L = ["", "### Training Trajectory"]
    if not src.traj:
        return [*L, "_No epoch finished yet._"]
    best_epoch = dig(src.status, "best.epoch")
    L += [
        "| Epoch | Val comb | Val mod | Val SNR | Val loss | Train comb | Train mod | Train SNR "
        "| Train loss | w mod | w SNR |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in src.traj:
        mark = " ★" if r["epoch"] == best_epoch or (best_epoch is None and r["is_best"]) else ""
        L.append(
            f"| {r['epoch']}{mark} | {_pct(r['val_acc_combined'])} | {_pct(r['val_acc_mod'])} | "
            f"{_pct(r['val_acc_snr'])} | {_num(r['val_loss'])} | {_pct(r['train_acc_combined'])} | "
            f"{_pct(r['train_acc_mod'])} | {_pct(r['train_acc_snr'])} | {_num(r['train_loss'])} | "
            f"{_share(r['w_mod'])} | {_share(r['w_snr'])} |"
        )
    if best_epoch is not None:
        value = report.metric(src.select, dig(src.status, "best.value"), missing="?")
        L.append(f"\n★ best epoch by `{src.select}`: {best_epoch} ({value})")
    return L


def _test_metrics(summary: dict[str, Any]) -> dict[str, Any] | None:
    for key in ("test", "metrics"):
        if isinstance(summary.get(key), dict):
            return summary[key]
    if summary.get("split") == "test" and isinstance(summary.get("val"), dict):
        return summary["val"]
    return None


def final_metrics(src: EntrySource) -> list[str]:
    """The last epoch's validation vs training metrics, and the best checkpoint's test."""
    if not src.traj:
        return []
    last = src.traj[-1]
    title = "Latest" if src.live else "Final"
    L = ["", f"### {title} Metrics (Epoch {last['epoch']}{', live' if src.live else ''})"]

    def pair(label: str, key: str, fmt: Any = _pct, unit: str = "") -> str:
        return f"**{label}**: {fmt(last[f'val_{key}'])}{unit} validation vs {fmt(last[f'train_{key}'])}{unit} training"

    mae = partial(_num, spec=".2f")
    L += [
        pair("Combined Accuracy", "acc_combined") + "  ",
        pair("Modulation", "acc_mod") + "  ",
        pair("SNR", "acc_snr") + "  ",
        pair("SNR within one bin", "snr_within_1") + "  ",
        pair("SNR MAE", "snr_mae_db", mae, " dB") + "  ",
        pair("Loss", "loss", _num),
    ]
    final_dir = src.run.rundir.final_export
    final = read_summary(final_dir) if final_dir.is_dir() else {}
    test = _test_metrics(final) if final else None
    if test:
        L.append(
            f"\n**Test** (best checkpoint, epoch {final.get('epoch', '?')}): combined "
            f"{_pct(test.get('acc_combined'))}, modulation {_pct(test.get('acc_mod'))}, "
            f"SNR {_pct(test.get('acc_snr'))}, SNR MAE {mae(test.get('snr_mae_db'))} dB, "
            f"loss {_num(test.get('loss'))}"
        )
    return L


def weights(src: EntrySource) -> list[str]:
    """The last epoch's task weight shares (and uncertainties), an under-weighted task flagged."""
    if not src.traj:
        return []
    last = src.traj[-1]
    if last.get("w_mod") is None and last.get("u_mod") is None:
        return []
    L = [
        "",
        "### Multi-Task Weighting",
        f"Scheme: {src.conf('loss.weighting', '?')} (epoch {last['epoch']})",
        "",
    ]
    for task, label in (("mod", "Modulation"), ("snr", "SNR")):
        w, u = last.get(f"w_{task}"), last.get(f"u_{task}")
        low = contract.is_number(w) and w < UNDERWEIGHT_SHARE
        unc = f" (uncertainty: {_num(u)})" if u is not None else ""
        L.append(
            f"- **{label}**: {_share(w)} weight{unc}" + (" ← **Underweighted**" if low else "")
        )
    return L


def _md(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    """A Markdown table; columns from `right_from` on are right-aligned (numbers)."""
    align = "|".join("---" if i < right_from else "---:" for i in range(len(header)))
    return (
        [f"| {' | '.join(r)} |" for r in (header, *rows)][:1]
        + [f"|{align}|"]
        + [f"| {' | '.join(r)} |" for r in rows]
    )


def _tables(src: EntrySource) -> tuple[str, tables.Tables] | None:
    return src.cell_tables


def hardest(src: EntrySource) -> list[str]:
    """The hardest (modulation, SNR) cells above the noise floor, and the floor in one line."""
    got = _tables(src)
    if got is None or not got[1].hardest.floor.snrs:
        return []
    label, t = got
    h = t.hardest
    L = ["", f"### Hardest Cells ({label})", h.text(), ""]
    if not h.cells:
        return L + [f"No cell or band above the noise floor holds n >= {h.min_n} frames."]
    header, rows = tables.hardest_rows(h)
    header[3] = "Combined" if h.metric == "acc_combined" else header[3]
    return L + _md(header, rows, right_from=1)


def confusions(src: EntrySource) -> list[str]:
    """The most confused modulation pairs per SNR band."""
    got = _tables(src)
    if got is None or not got[1].mod_floor.snrs:
        return []
    label, t = got
    L = ["", f"### Confusions ({label})", tables.summary_lines(t)["confusions"]]
    if t.confusions is None:
        L[-1] = L[-1].capitalize() + "."
        return L
    header, rows = tables.confusion_rows(t.confusions)
    if not rows:
        return L + ["", "No modulation confused above the noise floor."]
    return L + [""] + _md(header, rows, right_from=2)


def reliable_from(src: EntrySource) -> list[str]:
    """Per modulation, the lowest SNR from which it stays at 50 % / 90 % accuracy."""
    got = _tables(src)
    if got is None or not got[1].knees:
        return []
    label, t = got
    header, rows = tables.knee_rows(t.knees)
    L = ["", f"### Reliable From (SNR) ({label})", tables.summary_lines(t)["knees"], ""]
    return L + _md(header, rows, right_from=1)


def findings_section(src: EntrySource) -> list[str]:
    """Observations by stated rules, each naming its rule."""
    baseline = src.meta.get("baseline")
    found = findings(
        src.traj,
        select_metric=src.select,
        state=src.run.state,
        epochs=src.epochs if isinstance(src.epochs, int) else None,
        baseline=baseline if isinstance(baseline, dict) else None,
        config=src.cfg,
        restarts=src.run.restarts,
        health=src.run.health,
        stop_reason=src.run.stop_reason,
    )
    if not found:
        return []
    L = ["", "### Findings"]
    return L + [f"- {FINDING_ICONS.get(f.level, '-')} {f.text} (rule: `{f.rule}`)" for f in found]


def explanations(src: EntrySource) -> list[str]:
    """Where each head's attribution concentrates (rings of the constellation) against where
    the signal is, and the sanity check, from the run's explain exports (`amc-tui explain`)."""
    exports = saliency.list_exports(src.run.dir)
    if not exports:
        return []
    L = ["", "### Explanations"]
    for e in exports:
        rho = e.sanity.get("randomized_similarity") or {}
        L.append(
            f"- **{e.summary.get('method_name', e.method)}** ({e.split}, {len(e.cells)} cells, "
            f"<= {e.summary.get('frames', DASH)} frames each): {e.sanity_line()}"
        )
        for head in saliency.HEADS:
            passed = saliency.verdict(rho.get(head))[0]
            mark = "" if passed else " ← **meaningless**"
            L.append(
                f"  - {saliency.HEAD_NAMES[head]} head: attribution "
                f"{saliency.rings_text(saliency.head_rings(e, head))}; random weights "
                f"{saliency.rings_text(saliency.head_rings(e, head, 'random'))} (rho "
                f"{_num(rho.get(head), '.2f')}){mark}"
            )
        L.append(f"  - signal: {saliency.rings_text(saliency.head_rings(e, 'mod', 'image'))}")
    return L


SECTIONS = (
    header,
    configuration,
    dataset,
    trajectory,
    final_metrics,
    weights,
    hardest,
    confusions,
    reliable_from,
    findings_section,
    explanations,
)


def render_body(src: EntrySource) -> str:
    """The entry between its markers, without a trailing newline."""
    return "\n".join(line for section in SECTIONS for line in section(src))
