"""Statistics over a group of runs: the repeats of each sweep point, ranked, and the effect of a
change with its 95 % confidence interval and p value.

One run per setting says little: seeds alone move accuracy by a point or more. So each point
gets n, mean, sample std (ddof = 1) and a t-distribution CI; a point with n < 2 is marked
uncertain and never ranked as certain; differences get Welch's t-test, or the paired t-test
when both sides ran the same seeds. Failed or unreadable members are counted and named, never
averaged in. Per-cell accuracies count only cells with frames (no data is NaN, never 0).
scipy is imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc_tui import contract
from amc_tui.contract import SEVERE_HEALTH as SEVERE
from amc_tui.run import health
from amc_tui.run.analysis import (
    CELL_METRICS,
    best_row,
    export_trajectory,
    read_per_cell,
    read_summary,
    trajectory,
)
from amc_tui.run.health import stopped_by
from amc_tui.run.rundir import RunDir, dig, epoch_events, read_config_dict, read_run
from amc_tui.sweeps.sweep import format_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CONFIDENCE = 0.95
USABLE_STATES = frozenset({"completed"})
STAT_KEYS = tuple(f"{s}.{m}" for s in contract.SPLITS for m in contract.METRICS)
CELL_COLUMNS = ("modulation", "snr_db", "metric", "n", "mean", "std", "ci_lo", "ci_hi")
SHORT_NAMES = {
    "acc_combined": "combined",
    "acc_mod": "modulation",
    "acc_snr": "SNR",
    "snr_within_1": "SNR within 1 dB",
    "snr_mae_db": "dB SNR MAE",
    "loss": "loss",
}


# --------------------------------------------------------------------------- members


@dataclass
class Member:
    """One run of a group as statistics see it. `best` holds the metrics at the epoch its
    select metric ranks best, `final` those of its last epoch (plus `test.*` from the final
    export), both keyed by dotted metric (`val.acc_combined`)."""

    run_id: str
    name: str
    point: str
    repeat: int = 0
    seed: int | None = None
    state: str = "completed"
    best: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    per_cell: pd.DataFrame | None = None
    export_dir: Path | None = None  # the export `per_cell` came from
    error: str = ""  # why the run could not be read; "" when it could
    health: list[dict[str, Any]] = field(default_factory=list)  # rules active at its end
    stop_reason: str = ""  # a health rule that stopped it (run.stop_on)

    @property
    def usable(self) -> bool:
        return self.state in USABLE_STATES and not self.error

    @property
    def wasted(self) -> bool:
        """It learned nothing or diverged (run/health.py): its numbers rank nothing."""
        return health.wasted(self.health)

    @property
    def why_excluded(self) -> str:
        if self.error:
            return self.error
        if self.state in USABLE_STATES:
            return ""
        return f"{self.state} by {self.stop_reason}" if self.stop_reason else self.state

    def value(self, metric: str, which: str = "best") -> float | None:
        v = (self.best if which == "best" else self.final).get(metric)
        return float(v) if contract.is_number(v) else None


def _row_metrics(row: dict[str, Any] | None) -> dict[str, float]:
    """A trajectory row (`val_acc_combined`) as dotted metrics (`val.acc_combined`)."""
    out: dict[str, float] = {}
    for split in ("train", "val"):
        for m in contract.METRICS:
            v = (row or {}).get(f"{split}_{m}")
            if contract.is_number(v):
                out[f"{split}.{m}"] = float(v)
    return out


def member_from_run(
    run_dir: str | os.PathLike[str], point: str, repeat: int = 0, seed: int | None = None
) -> Member:
    """A Member read from a run directory: epoch events (else the epoch exports) for the
    metrics; per-cell accuracies from export/final (test split) when present, else from the
    best epoch's export. Never raises: an unreadable run becomes a Member with `error` set."""
    path = Path(run_dir)
    info = read_run(path, with_last_epoch=False)
    cfg = read_config_dict(RunDir(path))
    select = dig(cfg, "train.select_metric") or contract.DEFAULT_SELECT
    if seed is None and isinstance(dig(cfg, "train.seed"), int):
        seed = int(dig(cfg, "train.seed"))
    member = Member(info.id, info.name, point, repeat, seed, info.state)
    member.health, member.stop_reason = info.health, info.stop_reason or ""
    traj = trajectory(epoch_events(path)) or export_trajectory(path)
    if not traj:
        member.error = "no epoch metrics" if path.is_dir() else f"no run folder {path}"
        return member
    best = best_row(traj, str(select))
    member.best, member.final = _row_metrics(best), _row_metrics(traj[-1])
    final_dir = RunDir(path).final_export
    test = read_summary(final_dir).get("test")
    if isinstance(test, dict):
        member.final.update(
            {
                f"test.{m}": float(test[m])
                for m in contract.METRICS
                if contract.is_number(test.get(m))
            }
        )
    for export in (final_dir, RunDir(path).epoch_export(best["epoch"]) if best else None):
        cells = read_per_cell(export) if export is not None else None
        if cells is not None and not cells.empty:
            member.per_cell, member.export_dir = cells, Path(export)
            break
    return member


# --------------------------------------------------------------------------- one sample


@dataclass(frozen=True)
class Stat:
    """n, mean, sample std and the CI of the mean; std and CI are NaN when n < 2."""

    n: int
    mean: float
    std: float
    lo: float
    hi: float

    @property
    def half(self) -> float:
        return (self.hi - self.lo) / 2

    @property
    def uncertain(self) -> bool:
        return self.n < 2


def _t(df: float | np.ndarray) -> Any:
    from scipy import stats  # scipy (~0.5 s): only for a p-value or a CI

    return stats.t.ppf(0.5 + CONFIDENCE / 2, df)


def describe(values: Sequence[float | None]) -> Stat:
    """The Stat of the finite values (missing ones are not counted)."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path

    x = np.array([float(v) for v in values if contract.is_number(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Stat(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Stat(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(_t(n - 1)) * std / math.sqrt(n)
    return Stat(n, mean, std, mean - half, mean + half)


def format_stat(stat: Stat, metric: str) -> str:
    """`41.23 ± 0.85 % (n = 3)` (± the CI half-width); percent metrics shown as percent."""
    if stat.n == 0:
        return "no data (n = 0)"
    pct = contract.is_percent(metric)
    scale, unit = (100.0, " %") if pct else (1.0, "")
    mean = f"{stat.mean * scale:.2f}" if pct else f"{stat.mean:.4g}"
    if stat.uncertain:
        return f"{mean}{unit} (n = 1, no CI)"
    half = f"{stat.half * scale:.2f}" if pct else f"{stat.half:.2g}"
    return f"{mean} ± {half}{unit} (n = {stat.n})"


# --------------------------------------------------------------------------- cells


def cell_stats(frames: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """Per (modulation, snr_db, metric): how many members had frames in the cell (n), mean,
    std and CI over those members. A cell no member has frames for is NaN with n = 0."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    parts = [f for f in frames if f is not None and not f.empty]
    if not parts:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    df = pd.concat(parts, ignore_index=True)
    df["modulation"] = df["modulation"].astype(str)
    df["snr_db"] = df["snr_db"].astype(int)
    keys = df[["modulation", "snr_db"]].drop_duplicates()
    data = df[df["n"] > 0]
    out = []
    for metric in CELL_METRICS:
        g = data.groupby(["modulation", "snr_db"])[metric]
        agg = g.agg(n="count", mean="mean", std=lambda s: s.std(ddof=1)).reset_index()
        agg = keys.merge(agg, on=["modulation", "snr_db"], how="left")
        agg["n"] = agg["n"].fillna(0).astype(int)
        with np.errstate(invalid="ignore"):
            t = np.where(agg["n"] >= 2, _t(np.maximum(agg["n"] - 1, 1)), np.nan)
            half = t * agg["std"] / np.sqrt(agg["n"].where(agg["n"] > 0))
        agg["ci_lo"], agg["ci_hi"] = agg["mean"] - half, agg["mean"] + half
        agg.insert(2, "metric", metric)
        out.append(agg)
    res = pd.concat(out, ignore_index=True)
    return res.sort_values(["metric", "modulation", "snr_db"], kind="mergesort").reset_index(
        drop=True
    )[list(CELL_COLUMNS)]


# --------------------------------------------------------------------------- points


@dataclass
class PointStats:
    """The usable members of one point, those left out (name, reason), and their stats."""

    point: str
    members: list[Member]
    excluded: list[tuple[str, str]]
    best: dict[str, Stat]
    final: dict[str, Stat]
    cells: pd.DataFrame
    all_members: list[Member] = field(default_factory=list)  # usable or not

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def wasted(self) -> list[Member]:
        """Its runs that learned nothing or diverged, with those such a rule stopped."""
        return [m for m in self.members if m.wasted] + [
            m for m in self.all_members if not m.usable and stopped_by(m.stop_reason) in SEVERE
        ]

    @property
    def ended(self) -> list[Member]:
        """Its runs that count: the usable ones and those a severe health rule stopped (a run
        stopped on a plateau is only left out, as any stopped run)."""
        return [m for m in self.all_members if m.usable or stopped_by(m.stop_reason) in SEVERE]

    @property
    def dead(self) -> bool:
        """Every run of the point that ended learned nothing (or diverged): never ranked."""
        ended = self.ended
        return bool(ended) and len(self.wasted) == len(ended)

    def health_note(self) -> str:
        """`3/3 runs learned nothing` ("" when no run of the point is marked)."""
        bad = self.wasted
        if not bad:
            return ""
        rules = sorted(
            {h["rule"] for m in bad for h in m.health if h.get("rule") in SEVERE}
            | {r for m in bad if (r := stopped_by(m.stop_reason))}
        )
        words = " or ".join(r.replace("-", " ") for r in rules) or "marked"
        return f"{len(bad)}/{len(self.ended)} runs {words}"

    def stat(self, metric: str, which: str = "best") -> Stat:
        got = (self.best if which == "best" else self.final).get(metric)
        return got if got is not None else Stat(0, math.nan, math.nan, math.nan, math.nan)


def point_stats(point: str, members: Sequence[Member]) -> PointStats:
    usable = [m for m in members if m.usable]
    excluded = [(m.name, m.why_excluded) for m in members if not m.usable]
    stats = {
        which: {k: describe([m.value(k, which) for m in usable]) for k in STAT_KEYS}
        for which in ("best", "final")
    }
    stats = {w: {k: s for k, s in d.items() if s.n} for w, d in stats.items()}
    cells = cell_stats([m.per_cell for m in usable])
    return PointStats(point, usable, excluded, stats["best"], stats["final"], cells, list(members))


def group_points(members: Sequence[Member], order: Sequence[str] = ()) -> list[PointStats]:
    """PointStats per point: those in `order` first (points without members included), then
    the others in the order they first appear."""
    by_point: dict[str, list[Member]] = {p: [] for p in order}
    for m in members:
        by_point.setdefault(m.point, []).append(m)
    return [point_stats(p, ms) for p, ms in by_point.items()]


def stats_frame(points: Sequence[PointStats]) -> pd.DataFrame:
    """One row per (point, best/final, metric): n, mean, std, ci_lo, ci_hi, excluded."""
    import pandas as pd  # pandas (~0.3 s): off the CLI's and the app's start path

    rows = []
    for ps in points:
        for which, stats in (("best", ps.best), ("final", ps.final)):
            for metric, s in stats.items():
                rows.append([ps.point, which, metric, s.n, s.mean, s.std, s.lo, s.hi,
                             len(ps.excluded)])  # fmt: skip
    cols = ["point", "which", "metric", "n", "mean", "std", "ci_lo", "ci_hi", "excluded"]
    return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class Ranked:
    """A point's place: rank 1.. for points with n >= 2, None for uncertain ones."""

    rank: int | None
    point: str
    stat: Stat
    dead: bool = False  # every run learned nothing or diverged: unranked, last with data

    @property
    def uncertain(self) -> bool:
        return self.stat.uncertain


def rank_points(
    points: Sequence[PointStats], metric: str = contract.DEFAULT_SELECT, which: str = "best"
) -> list[Ranked]:
    """Points by mean `metric`, best first: ranked ones (n >= 2), then n = 1 (uncertain,
    unranked), then points whose runs all learned nothing (unranked: chance is no result),
    then points with no data."""
    sign = 1.0 if contract.lower_is_better(metric) else -1.0
    stats = [(ps.point, ps.stat(metric, which), ps.dead) for ps in points]

    def key(item: tuple[int, tuple[str, Stat, bool]]) -> tuple[int, float, int]:
        i, (_, s, dead) = item
        tier = 3 if not s.n and not dead else 2 if dead else 0 if s.n >= 2 else 1
        return tier, sign * s.mean if s.n else 0.0, i

    out, rank = [], 0
    for _, (point, s, dead) in sorted(enumerate(stats), key=key):
        ranked = s.n >= 2 and not dead
        rank += ranked
        out.append(Ranked(rank if ranked else None, point, s, dead))
    return out


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Effect:
    """mean(a) - mean(b) with its CI and p value (Welch, or paired on matching seeds)."""

    title: str
    metric: str
    n_a: int
    n_b: int
    diff: float
    lo: float
    hi: float
    p: float
    paired: bool

    @property
    def half(self) -> float:
        return (self.hi - self.lo) / 2

    def sentence(self) -> str:
        """`data.shuffle true vs false: +1.9 ± 0.6 pts combined (95 % CI, n = 3 vs 3,
        p = 0.01)`; points of percent for percent metrics, plain numbers otherwise."""
        split, _, name = self.metric.rpartition(".")
        what = SHORT_NAMES.get(name, name)
        if split not in ("", "val"):
            what = f"{split} {what}"
        n = f"n = {self.n_a} vs {self.n_b}"
        if contract.is_percent(self.metric):
            scale, unit = 100.0, " pts"
            digits = 1 if not math.isfinite(self.half) or self.half * 100 >= 0.1 else 2
            diff, half = f"{self.diff * scale:+.{digits}f}", f"{self.half * scale:.{digits}f}"
        else:
            unit = ""
            diff, half = f"{self.diff:+.3g}", f"{self.half:.2g}"
        if not math.isfinite(self.lo):
            return f"{self.title}: {diff}{unit} {what} ({n}: too few runs for a CI)"
        how = "95 % CI, paired" if self.paired else "95 % CI"
        return f"{self.title}: {diff} ± {half}{unit} {what} ({how}, {n}, {format_p(self.p)})"


def format_p(p: float) -> str:
    if not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def compare_values(
    a: Sequence[float], b: Sequence[float], metric: str, title: str, paired: bool = False
) -> Effect:
    """The Effect of a vs b. `paired` means a[i] and b[i] share a seed (equal lengths):
    the paired t-test on the differences; otherwise Welch's t-test."""
    import numpy as np  # numpy, pandas: off the CLI's and the app's start path
    from scipy import stats  # scipy (~0.5 s): only for a p-value or a CI

    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(xa), len(xb)
    nan = math.nan
    diff = float(xa.mean() - xb.mean()) if na and nb else nan
    if paired and na == nb and na >= 2:
        d = xa - xb
        se, df = float(d.std(ddof=1)) / math.sqrt(na), na - 1
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            p = float(stats.ttest_rel(xa, xb).pvalue)
    elif na >= 2 and nb >= 2:
        va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else nan
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            p = float(stats.ttest_ind(xa, xb, equal_var=False).pvalue)
        paired = False
    else:
        return Effect(title, metric, na, nb, diff, nan, nan, nan, False)
    half = float(_t(df)) * se if se > 0 else 0.0
    return Effect(title, metric, na, nb, diff, diff - half, diff + half, p, paired)


def _pairs(a: list[tuple[Any, float]], b: list[tuple[Any, float]]) -> bool:
    """True when both sides carry the same unique keys (seeds, or seeds and other axes)."""
    ka, kb = [k for k, _ in a], [k for k, _ in b]
    return (
        None not in ka
        and len(set(ka)) == len(ka)
        and len(set(kb)) == len(kb)
        and set(ka) == set(kb)
        and len(ka) >= 2
    )


def _effect(
    title: str, metric: str, a: list[tuple[Any, float]], b: list[tuple[Any, float]]
) -> Effect:
    if _pairs(a, b):
        vb = dict(b)
        a = sorted(a, key=lambda kv: json.dumps(kv[0], default=str))
        return compare_values([v for _, v in a], [vb[k] for k, _ in a], metric, title, True)
    return compare_values([v for _, v in a], [v for _, v in b], metric, title)


def point_effect(
    a: PointStats, b: PointStats, metric: str = contract.DEFAULT_SELECT, which: str = "best"
) -> Effect:
    """Point a vs point b; paired when both ran the same seeds."""
    side = [
        [(m.seed, v) for m in ps.members if (v := m.value(metric, which)) is not None]
        for ps in (a, b)
    ]
    return _effect(f"{a.point} vs {b.point}", metric, side[0], side[1])


def axis_effect(
    points: Sequence[PointStats],
    values: dict[str, dict[str, Any]],
    key: str,
    metric: str = contract.DEFAULT_SELECT,
    which: str = "best",
    a: Any = None,
    b: Any = None,
) -> Effect:
    """The effect of one axis: members of points where `key` = a vs where it = b, pooled
    over the other axes. `values` maps a point label to its axis values. With a and b left
    out the axis must have exactly two values. Paired when every run on one side has a twin
    on the other with the same other-axis values and seed."""

    seen = list(dict.fromkeys(json.dumps(v[key], sort_keys=True) for v in values.values()))
    if a is None and b is None:
        if len(seen) != 2:
            raise ValueError(f"{key} has {len(seen)} values; name the two to compare")
        a, b = (json.loads(s) for s in seen)
    sides: dict[str, list[tuple[Any, float]]] = {"a": [], "b": []}
    for ps in points:
        vals = values.get(ps.point)
        if vals is None or key not in vals:
            continue
        side = "a" if vals[key] == a else "b" if vals[key] == b else None
        if side is None:
            continue
        others = json.dumps({k: v for k, v in vals.items() if k != key}, sort_keys=True)
        for m in ps.members:
            v = m.value(metric, which)
            if v is not None:
                sides[side].append(((others, m.seed) if m.seed is not None else None, v))
    title = f"{key} {format_value(a)} vs {format_value(b)}"
    return _effect(title, metric, sides["a"], sides["b"])
