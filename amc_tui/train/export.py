"""Analysis export of one evaluation (DESIGN section 5), into the run's own directory.

`export/epoch_NNN/` holds the validation split of epoch NNN, `export/final/` the test split
evaluated with the best checkpoint. Every file is written atomically; JSON holds plain Python
types only (the seed crashed on numpy int64). Nothing here knows about torch.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from amc_tui.contract import (
    CONFUSION_BY_SNR_COLUMNS,
    CONFUSION_BY_SNR_FILE,
    CONFUSION_FILES,
    F1_FILES,
    PER_CELL_COLUMNS,
    PER_CELL_FILE,
    SUMMARY_FILE,
)
from amc_tui.fsutil import atomic_write_json, atomic_write_text
from amc_tui.train.metrics import Summary, f1_scores


def plain(obj: Any) -> Any:
    """Deep copy as JSON-safe builtins (numpy scalars and arrays, tuples; NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


def _confusion(conf: np.ndarray, labels: list[str]) -> str:
    rows: list[list[Any]] = [["true\\pred", *labels]]
    rows += [[labels[i], *map(int, conf[i])] for i in range(len(labels))]
    return _csv(rows)


def _confusion_by_snr(conf: np.ndarray, classes: list[str], snrs: list[int]) -> str:
    """Long form, zero counts left out (26 SNRs x 24 x 24 classes would be 15 k rows, mostly
    zeros, in every epoch's export)."""
    rows: list[list[Any]] = [list(CONFUSION_BY_SNR_COLUMNS)]
    for s, t, p in zip(*np.nonzero(conf), strict=True):
        rows.append([int(snrs[s]), classes[t], classes[p], int(conf[s, t, p])])
    return _csv(rows)


def write_export(
    folder: str | Path,
    summary: Summary,
    classes: list[str],
    snrs: list[int],
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Write the seven files; `fields` (epoch event metrics, run id, split sizes, ...) go into
    summary.json next to the F1 scores and label lists. Returns what summary.json holds."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    snr_labels = [str(s) for s in snrs]
    f1_mod = f1_scores(summary.conf_mod)
    f1_snr = f1_scores(summary.conf_snr)
    doc = plain(
        {
            **fields,
            "classes": list(classes),
            "snrs": [int(s) for s in snrs],
            "n": summary.n,
            "f1_mod": {c: float(f) for c, f in zip(classes, f1_mod, strict=True)},
            "f1_snr": {s: float(f) for s, f in zip(snr_labels, f1_snr, strict=True)},
            "macro_f1_mod": float(f1_mod.mean()) if len(f1_mod) else 0.0,
            "macro_f1_snr": float(f1_snr.mean()) if len(f1_snr) else 0.0,
        }
    )
    rows = summary.per_cell(classes, snrs)
    atomic_write_text(
        out / PER_CELL_FILE,
        _csv([list(PER_CELL_COLUMNS)] + [[r[c] for c in PER_CELL_COLUMNS] for r in rows]),
    )
    atomic_write_text(out / CONFUSION_FILES["mod"], _confusion(summary.conf_mod, list(classes)))
    atomic_write_text(out / CONFUSION_FILES["snr"], _confusion(summary.conf_snr, snr_labels))
    atomic_write_text(
        out / CONFUSION_BY_SNR_FILE,
        _confusion_by_snr(summary.conf_mod_snr, list(classes), [int(s) for s in snrs]),
    )
    atomic_write_text(
        out / F1_FILES["mod"],
        _csv(
            [["modulation", "f1"]] + [[c, float(f)] for c, f in zip(classes, f1_mod, strict=True)]
        ),
    )
    atomic_write_text(
        out / F1_FILES["snr"],
        _csv([["snr_db", "f1"]] + [[int(s), float(f)] for s, f in zip(snrs, f1_snr, strict=True)]),
    )
    atomic_write_json(out / SUMMARY_FILE, doc)  # last: its presence marks a complete export
    return doc
