"""`compare A B`: two runs side by side (config keys that differ, best and last-epoch metrics, the
cells that changed most); a group or a point on either side goes to the group comparison."""

from __future__ import annotations

import argparse

from amc_tui import report
from amc_tui.cli.groups import compare_refs
from amc_tui.cli.output import print_json
from amc_tui.run.analysis import compare_runs
from amc_tui.run.refs import resolve_run
from amc_tui.workspace import Workspace


def cmd_compare(args: argparse.Namespace, ws: Workspace) -> int:
    if (rc := compare_refs(args, ws)) is not None:  # a group or a point on either side
        return rc
    a, b = resolve_run(ws, args.a), resolve_run(ws, args.b)
    out = compare_runs(a, b)
    if args.json:
        print_json(out)
        return 0
    print(f"A = {a.name} ({a.id}), {a.state}, best {report.best(a.best)}")
    print(f"B = {b.name} ({b.id}), {b.state}, best {report.best(b.best)}")
    print("\nconfig keys that differ:" if out["config_diff"] else "\nconfigs are identical")
    for key, va, vb in out["config_diff"]:
        print(f"  {key}: {va!r} -> {vb!r}")

    def row(r: dict) -> list[str]:
        m = r["metric"]
        values = [report.metric(m, r[k], ".4f") for k in ("best_a", "best_b")]
        finals = [report.metric(m, r[k], ".4f") for k in ("final_a", "final_b")]
        return [
            m,
            *values,
            report.delta(m, r["best_delta"]),
            *finals,
            report.delta(m, r["final_delta"]),
        ]

    rows = [row(r) for r in out["metrics"]]
    ep = {f"{k}{w}": report.MISSING if out[w][k] is None else out[w][k]
          for k in ("best_epoch", "epoch") for w in ("a", "b")}  # fmt: skip
    print(
        f"\nmetrics (best by {out['select_metric']}: A epoch {ep['best_epocha']}, B epoch {ep['best_epochb']}; "
        f"last: A epoch {ep['epocha']}, B epoch {ep['epochb']}):"
    )
    print(report.table(rows, ["METRIC", "BEST A", "BEST B", "DELTA", "LAST A", "LAST B", "DELTA"]))
    if out["top_cells"]:
        print(f"\ncells that changed most (acc_combined, export {out['export']}):")
        print(report.table(
            [[c["modulation"], str(c["snr_db"]), report.pct(c["a"]), report.pct(c["b"]), report.delta("acc_combined", c["delta"])] for c in out["top_cells"]],
            ["MODULATION", "SNR", "A", "B", "DELTA"],
        ))  # fmt: skip
    elif out["export"]:
        print(f"\nno cells with data in both runs (export {out['export']})")
    else:
        print("\nno common export to compare cells")
    return 0
