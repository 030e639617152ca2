"""Group statistics against numpy/scipy computed here, independently, on the same numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runs_fixtures import make_fake_run, runs_workspace
from scipy import stats

from amc_tui.run.rundir import epoch_events
from amc_tui.sweeps.stats import (
    Member,
    axis_effect,
    cell_stats,
    compare_values,
    describe,
    format_stat,
    group_points,
    member_from_run,
    point_effect,
    rank_points,
    stats_frame,
)

M = "val.acc_combined"


def member(point: str, seed: int, acc: float, state: str = "completed", **kw) -> Member:
    best = {M: acc, "val.loss": 2.0 - acc, "val.snr_mae_db": 5.0 - 2 * acc}
    final = {M: acc - 0.01, "val.loss": 2.1 - acc}
    return Member(f"id-{point}-{seed}", f"{point}-{seed}", point, seed, seed, state, best, final,
                  **kw)  # fmt: skip


def ci(x: list[float]) -> tuple[float, float]:
    return stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))


def test_describe_matches_the_t_interval() -> None:
    x = [0.41, 0.43, 0.38, 0.44]
    s = describe(x + [None, float("nan")])  # missing values are not counted
    assert s.n == 4 and s.mean == pytest.approx(np.mean(x))
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert (s.lo, s.hi) == pytest.approx(ci(x))
    one = describe([0.5])
    assert one.n == 1 and one.uncertain and math.isnan(one.std) and math.isnan(one.lo)
    assert describe([]).n == 0 and math.isnan(describe([]).mean)


def test_points_exclude_and_name_failed_members_and_rank_by_mean() -> None:
    accs = {"a": [0.40, 0.42, 0.41], "b": [0.45, 0.47, 0.44], "c": [0.50]}
    members = [member(p, k, v) for p, vs in accs.items() for k, v in enumerate(vs)]
    members += [
        member("a", 3, 0.99, state="failed"),
        member("b", 3, 0.99, state="running"),
        Member("id-x", "b-x", "b", 4, 4, "completed", error="no epoch metrics"),
    ]
    points = group_points(members, order=["a", "b", "c", "d"])
    assert [p.point for p in points] == ["a", "b", "c", "d"]
    a, b, c, d = points
    assert (a.n, b.n, c.n, d.n) == (3, 3, 1, 0)
    assert a.excluded == [("a-3", "failed")]
    assert b.excluded == [("b-3", "running"), ("b-x", "no epoch metrics")]
    sa = a.stat(M)
    assert sa.mean == pytest.approx(np.mean(accs["a"]))
    assert (sa.lo, sa.hi) == pytest.approx(ci(accs["a"]))
    assert a.stat(M, "final").mean == pytest.approx(np.mean(accs["a"]) - 0.01)
    ranked = rank_points(points, M)
    assert [(r.rank, r.point, r.uncertain) for r in ranked] == [
        (1, "b", False), (2, "a", False), (None, "c", True), (None, "d", True)
    ]  # fmt: skip
    # lower is better for loss: the same order here, since loss = 2 - acc
    assert [r.point for r in rank_points(points, "val.loss")][:2] == ["b", "a"]
    assert [r.point for r in rank_points(points, "val.snr_mae_db")][:2] == ["b", "a"]
    frame = stats_frame(points)
    row = frame[(frame.point == "a") & (frame.which == "best") & (frame.metric == M)].iloc[0]
    assert row.n == 3 and row.excluded == 1 and row.ci_hi == pytest.approx(ci(accs["a"])[1])
    assert format_stat(sa, M) == f"{100 * sa.mean:.2f} ± {100 * sa.half:.2f} % (n = 3)"
    assert format_stat(c.stat(M), M) == "50.00 % (n = 1, no CI)"


def test_points_whose_runs_learned_nothing_are_marked_and_never_ranked() -> None:
    """A severe health rule (at the run's end, or its stop) marks a run wasted; a point whose
    runs all are is unranked, after every point with data; a run stopped on a plateau is
    only left out, as any stopped run."""
    dead = [{"rule": "learned-nothing", "epoch": 3, "message": "learned nothing: ..."}]
    members = [
        member("a", 0, 0.40), member("a", 1, 0.42),
        member("b", 0, 0.01, health=dead), member("b", 1, 0.02, health=dead),
        member("c", 0, 0.45), member("c", 1, 0.44, health=dead),
        member("d", 0, 0.0, state="stopped", stop_reason="health: learned-nothing"),
        member("e", 0, 0.5, state="stopped", stop_reason="health: plateau"),
        member("e", 1, 0.5, state="stopped", stop_reason="health: plateau"),
    ]  # fmt: skip
    a, b, c, d, e = group_points(members, order=["a", "b", "c", "d", "e"])
    assert (a.health_note(), b.health_note()) == ("", "2/2 runs learned nothing")
    assert c.health_note() == "1/2 runs learned nothing" and not c.dead
    assert b.dead and d.dead and d.health_note() == "1/1 runs learned nothing"
    assert not e.dead and e.health_note() == ""
    assert d.excluded == [("d-0", "stopped by health: learned-nothing")]
    ranked = rank_points([a, b, c, d, e], M)
    assert [(r.rank, r.point, r.dead) for r in ranked] == [
        (1, "c", False), (2, "a", False), (None, "b", True), (None, "d", True),
        (None, "e", False),
    ]  # fmt: skip


def test_welch_effect_matches_scipy() -> None:
    a, b = [0.431, 0.452, 0.440], [0.41, 0.425, 0.409, 0.418]
    e = compare_values(a, b, M, "data.shuffle true vs false")
    ref = stats.ttest_ind(a, b, equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    assert not e.paired and (e.n_a, e.n_b) == (3, 4)
    assert e.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (e.lo, e.hi) == pytest.approx((lo, hi))
    assert e.p == pytest.approx(ref.pvalue)
    half = (hi - lo) / 2
    assert e.sentence() == (
        f"data.shuffle true vs false: {100 * e.diff:+.1f} ± {100 * half:.1f} pts combined "
        f"(95 % CI, n = 3 vs 4, p = {ref.pvalue:.2g})"
    )


def test_the_sentence_reads_as_in_the_docs() -> None:
    e = compare_values([0.44, 0.45, 0.46], [0.42, 0.43, 0.44], M, "data.shuffle true vs false")
    assert e.sentence() == "data.shuffle true vs false: +2.0 ± 2.3 pts combined (95 % CI, n = 3 vs 3, p = 0.07)"  # fmt: skip
    e = compare_values([1.2, 1.3, 1.25], [1.4, 1.5, 1.45], "val.loss", "lr 1e-3 vs 1e-4")
    assert e.sentence() == "lr 1e-3 vs 1e-4: -0.2 ± 0.11 loss (95 % CI, n = 3 vs 3, p = 0.008)"
    few = compare_values([0.5], [0.4, 0.41], M, "x vs y")
    assert few.sentence() == "x vs y: +9.5 pts combined (n = 1 vs 2: too few runs for a CI)"


def test_point_effect_is_paired_when_the_seeds_match() -> None:
    a = [member("a", k, v) for k, v in enumerate([0.40, 0.42, 0.41])]
    b = [member("b", k, v) for k, v in enumerate([0.43, 0.46, 0.44])]
    pa, pb = group_points(a + b)
    e = point_effect(pb, pa, M)
    ref = stats.ttest_rel([0.43, 0.46, 0.44], [0.40, 0.42, 0.41])
    assert e.paired and e.p == pytest.approx(ref.pvalue)
    assert (e.lo, e.hi) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert "paired" in e.sentence() and e.sentence().startswith("b vs a: +3.3 ± ")
    # other seeds on one side: Welch
    c = [member("c", k + 10, v) for k, v in enumerate([0.43, 0.46, 0.44])]
    pc = group_points(c)[0]
    e2 = point_effect(pc, pa, M)
    assert not e2.paired
    assert e2.p == pytest.approx(stats.ttest_ind([0.43, 0.46, 0.44], [0.40, 0.42, 0.41],
                                                 equal_var=False).pvalue)  # fmt: skip


def test_axis_effect_pools_other_axes_and_pairs_by_them() -> None:
    grid = {
        "s=true, lr=1": {"s": True, "lr": 1},
        "s=true, lr=2": {"s": True, "lr": 2},
        "s=false, lr=1": {"s": False, "lr": 1},
        "s=false, lr=2": {"s": False, "lr": 2},
    }
    accs = {
        "s=true, lr=1": [0.50, 0.52],
        "s=true, lr=2": [0.60, 0.61],
        "s=false, lr=1": [0.48, 0.49],
        "s=false, lr=2": [0.57, 0.60],
    }
    members = [member(p, k, v) for p, vs in accs.items() for k, v in enumerate(vs)]
    points = group_points(members)
    e = axis_effect(points, grid, "s", M)
    t_side = accs["s=true, lr=1"] + accs["s=true, lr=2"]
    f_side = accs["s=false, lr=1"] + accs["s=false, lr=2"]
    ref = stats.ttest_rel(t_side, f_side)
    assert e.paired and (e.n_a, e.n_b) == (4, 4)
    assert e.title == "s true vs false"
    assert e.diff == pytest.approx(np.mean(t_side) - np.mean(f_side))
    assert e.p == pytest.approx(ref.pvalue)
    assert (e.lo, e.hi) == pytest.approx(tuple(ref.confidence_interval(0.95)))
    # a failed run breaks the pairing: Welch on what is left
    members[0].state = "failed"
    e2 = axis_effect(group_points(members), grid, "s", M)
    assert not e2.paired and e2.n_a == 3
    welch = stats.ttest_ind(t_side[1:], f_side, equal_var=False)
    assert e2.p == pytest.approx(welch.pvalue)
    grid3 = {**grid, "s=maybe": {"s": "maybe", "lr": 1}}
    with pytest.raises(ValueError, match="3 values"):
        axis_effect(points, grid3, "s", M)
    assert axis_effect(points, grid3, "s", M, a=True, b=False).p == pytest.approx(ref.pvalue)


def cells(rows: list[tuple[str, int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(m, s, n, a, a, a, 1.0) for m, s, n, a in rows],
        columns=["modulation", "snr_db", "n", "acc_mod", "acc_snr", "acc_combined", "snr_mae_db"],
    )


def test_cells_count_only_members_with_frames() -> None:
    f1 = cells([("BPSK", 0, 8, 0.5), ("BPSK", 2, 8, 0.7), ("QPSK", 0, 0, 0.0)])
    f2 = cells([("BPSK", 0, 8, 0.6), ("BPSK", 2, 0, 0.0), ("QPSK", 0, 0, 0.0)])
    f3 = cells([("BPSK", 0, 8, 0.65), ("BPSK", 2, 8, 0.9), ("QPSK", 0, 0, 0.0)])
    res = (
        cell_stats([f1, f2, None, f3])
        .query("metric == 'acc_combined'")
        .set_index(["modulation", "snr_db"])
    )
    x = [0.5, 0.6, 0.65]
    r = res.loc[("BPSK", 0)]
    assert r.n == 3 and r["mean"] == pytest.approx(np.mean(x))
    assert r["std"] == pytest.approx(np.std(x, ddof=1))
    assert (r.ci_lo, r.ci_hi) == pytest.approx(ci(x))
    r2 = res.loc[("BPSK", 2)]  # the member without frames is not a 0
    assert r2.n == 2 and r2["mean"] == pytest.approx(0.8)
    r3 = res.loc[("QPSK", 0)]
    assert r3.n == 0 and math.isnan(r3["mean"]) and math.isnan(r3.ci_lo)
    assert cell_stats([None]).empty


def test_member_from_run_reads_best_final_test_and_cells(tmp_path: Path) -> None:
    ws = runs_workspace(tmp_path)
    run = make_fake_run(ws, "done", epochs=4, seed=3)
    m = member_from_run(run.path, "p", repeat=1)
    evs = epoch_events(run.path)
    best = max(evs, key=lambda ev: ev["val"]["acc_combined"])
    assert m.usable and m.point == "p" and m.repeat == 1 and m.seed == 0
    assert m.best[M] == best["val"]["acc_combined"]
    assert m.best["train.loss"] == best["train"]["loss"]
    assert m.final["val.loss"] == evs[-1]["val"]["loss"]
    assert m.final["test.acc_combined"] == evs[-1]["val"]["acc_combined"]  # fixture: test = val
    assert m.per_cell is not None and len(m.per_cell) == 4 * 11
    failed = member_from_run(make_fake_run(ws, "bad", state="failed", seed=1).path, "p")
    assert not failed.usable and failed.why_excluded == "failed"
    empty = member_from_run(make_fake_run(ws, "q", state="queued", seed=2, exports=False).path, "p")
    assert empty.why_excluded == "no epoch metrics"
    assert member_from_run(tmp_path / "runs" / "gone", "p").why_excluded.startswith("no run folder")
