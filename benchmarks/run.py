"""The benchmark suite (issue 6): `python benchmarks/run.py --out benchmarks/results.json`.

Writes {"machine": {...}, "figures": [{name, value, unit, baseline, baseline_value, ratio,
note?, extra?}], "findings": {...}, "suite": {...}}. Every baseline is measured in the same run
(or is a stated goal); ratio > 1 always means better than the baseline (value / baseline for
rates, baseline / value for times, said in the unit). Synthetic files and the 1,000-run
workspace live in a temporary folder that is removed at the end.

Areas: render (CPU rendering vs a histogram2d loop, float16 storage effect), feed (shuffled
reads per store mode and layout), cli (`amc-tui ls`, TUI first paint), index (`ls` and the
app's first paint and all rows at 1,000 and 10,000 runs through the run index, each against an
empty workspace), train (demo config
samples/s; two concurrent CPU trainers against one alone). `--quick` shrinks everything to seconds (the smoke test uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, str(REPO))

from benchmarks.common import FIGURE_KEYS, Figure, machine  # noqa: E402
from benchmarks.datafiles import Files  # noqa: E402

AREAS = ("render", "feed", "cli", "index", "train")


def run_area(area: str, files: Files, root: Path, quick: bool) -> tuple[list[Figure], Any]:
    if area == "render":
        from benchmarks import bench_render

        return bench_render.run(files, quick)
    if area == "feed":
        from benchmarks import bench_feed

        return bench_feed.run(files, quick)
    if area == "cli":
        from benchmarks import bench_cli

        return bench_cli.run(root, quick)
    if area == "index":
        from benchmarks import bench_index

        return bench_index.run(root, quick)
    if area == "train":
        from benchmarks import bench_train

        return bench_train.run(files, quick, root)
    raise ValueError(f"unknown area {area!r}; one of {', '.join(AREAS)}")


def markdown(figures: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table (for docs/PERFORMANCE.md and the README)."""
    rows = [
        "| figure | value | unit | baseline | baseline value | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        unit = f["unit"].replace(" (ratio = baseline / value)", "")
        rows.append(
            f"| {f['name']} | {f['value']:,} | {unit} | {f['baseline']} | "
            f"{f['baseline_value']:,} | {f['ratio']} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test), seconds")
    p.add_argument("--only", default="", help=f"comma-separated areas: {','.join(AREAS)}")
    p.add_argument("--frames-per-cell", type=int, default=0,
                   help="synthetic file size (default 64, quick 2)")  # fmt: skip
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--keep", default="", help="keep the temporary files in this folder")
    args = p.parse_args(argv)
    areas = [a for a in args.only.split(",") if a] or list(AREAS)
    for a in areas:
        if a not in AREAS:
            p.error(f"unknown area {a!r}; one of {', '.join(AREAS)}")
    fpc = args.frames_per_cell or (2 if args.quick else 64)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    elif any(a in areas for a in ("render", "train", "feed")):
        import torch  # noqa: F401 - so machine() reports torch's thread count

    t_suite = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "figures": [], "findings": {}, "details": {}}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="amc-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        files = Files(root / "data", fpc)
        files.root.mkdir(parents=True, exist_ok=True)
        for area in areas:
            t0 = time.perf_counter()
            print(f"[bench] {area} ...", file=sys.stderr, flush=True)
            try:
                figs, extra = run_area(area, files, root / area, args.quick)
            except Exception:  # noqa: BLE001 - one broken area must not hide the others
                errors[area] = traceback.format_exc(limit=8)
                print(errors[area], file=sys.stderr, flush=True)
                continue
            finally:
                timings[area] = round(time.perf_counter() - t0, 1)
            result["figures"] += [f.to_dict() for f in figs]
            if area == "render":
                result["findings"].update(extra)
            else:
                result["details"][area] = extra
            for f in figs:
                print(f"  {f.name}: {f.value:,} {f.unit.split(' (')[0]} "
                      f"(x{f.ratio} vs {f.baseline})", file=sys.stderr, flush=True)  # fmt: skip
        result["details"]["files"] = {"frames_per_cell": fpc, **files.timings}
    with contextlib.suppress(OSError):
        result["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result["suite"] = {
        "quick": args.quick,
        "areas": areas,
        "seconds": round(time.perf_counter() - t_suite, 1),
        "area_seconds": timings,
        "errors": errors,
        "figure_keys": list(FIGURE_KEYS),
        "command": " ".join([Path(sys.executable).name, "benchmarks/run.py", *sys.argv[1:]]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result["figures"]))
    print(f"\nwrote {out} in {result['suite']['seconds']} s", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
