"""Figures from hand-made run directories: every file opens, has its size, is not blank; the
titles say the split; bad input is refused before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from runs_fixtures import make_fake_run, runs_workspace

from amc_tui.errors import UserError
from amc_tui.run.rundir import RunDir
from amc_tui.sweeps.plot import DPI, SIZES, Target, plot_targets


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, RunDir]:
    ws = runs_workspace(tmp_path)
    out = {n: make_fake_run(ws, n, seed=i, epochs=3) for i, n in enumerate(["a1", "a2", "c"])}
    cells = out["a2"].final_export / "per_cell.csv"  # repeats differ, so the band has a width
    lines = cells.read_text().splitlines()
    lines[1:] = [ln[: ln.rfind(",", 0, ln.rfind(","))] + ",0.05,1.0" for ln in lines[1:]]
    cells.write_text("\n".join(lines) + "\n")
    return out


def check_png(path: Path, kind: str) -> None:
    img = imread(path)
    w, h = SIZES[kind]
    assert img.shape[:2] == (round(h * DPI), round(w * DPI)), path.name
    assert float(np.std(img[..., :3])) > 0.01, f"{path.name} is blank"


def test_every_figure_of_a_group_and_a_run(runs: dict[str, RunDir], tmp_path: Path) -> None:
    group = Target("train.lr=0.001", (runs["a1"].path, runs["a2"].path))
    out = tmp_path / "figs"
    paths = plot_targets([group, runs["c"].path], out)
    assert [p.name for p in paths] == [
        "acc_vs_snr.png",
        "acc_by_snr_band.png",
        "acc_vs_snr_per_mod_train.lr=0.001.png",
        "heatmap_train.lr=0.001.png",
        "confusion_mod_train.lr=0.001.png",
        "curves_train.lr=0.001.png",
        "knee_train.lr=0.001.png",
        "acc_vs_snr_per_mod_c.png",
        "heatmap_c.png",
        "confusion_mod_c.png",
        "curves_c.png",
        "knee_c.png",
    ]
    kinds = {"acc_vs_snr": "snr", "acc_vs_snr_per_mod": "snr_mod", "heatmap": "heatmap",
             "confusion_mod": "confusion", "curves": "curves", "knee": "knee",
             "acc_by_snr_band": "bands"}  # fmt: skip
    for p in paths:
        stem = (
            p.stem.rsplit("_", 1)[0] if p.stem not in ("acc_vs_snr", "acc_by_snr_band") else p.stem
        )
        check_png(p, kinds[stem])
    assert sorted(out.iterdir()) == sorted(paths)  # no temp files left behind


def test_vector_formats_and_titles_name_the_split(runs: dict[str, RunDir], tmp_path: Path) -> None:
    group = Target("point-1", (runs["a1"].path, runs["a2"].path))
    paths = plot_targets([group, runs["c"].path], tmp_path / "v", ["svg", "pdf"], kinds=["snr"])
    assert [p.name for p in paths] == ["acc_vs_snr.svg", "acc_vs_snr.pdf"]
    svg = paths[0].read_text()
    assert "Accuracy vs SNR: point-1, c (test split" in svg and "SNR (dB)" in svg
    assert "Accuracy (%)" in svg and "PolyCollection" in svg  # the group's std band
    assert paths[1].read_bytes().startswith(b"%PDF")
    single = plot_targets([runs["c"].path], tmp_path / "one", ["svg"], kinds=["snr"])[0]
    assert "PolyCollection" not in single.read_text()  # one run: no band
    val = plot_targets([runs["c"].path], tmp_path / "val", ["svg"], "val", kinds=["heatmap"])
    assert "validation split, epoch 3" in val[0].read_text()


def test_a_run_without_a_test_export_falls_back_to_validation(tmp_path: Path) -> None:
    ws = runs_workspace(tmp_path)
    done = make_fake_run(ws, "done", seed=1, epochs=4)
    stopped = make_fake_run(ws, "halted", state="stopped", seed=2, epochs=4)
    out = tmp_path / "figs"
    with pytest.raises(UserError, match=r"run halted: no test-split export \(.*export/final/"):
        plot_targets([done.path, stopped.path], out, split="test")
    assert not out.exists()  # refused before anything was written
    paths = plot_targets([done.path, stopped.path], out, ["svg"], kinds=["snr"])
    assert "validation split, best epochs" in paths[0].read_text()


def test_missing_exports_and_bad_options_are_refused(tmp_path: Path) -> None:
    ws = runs_workspace(tmp_path)
    bare = make_fake_run(ws, "bare", seed=1, epochs=2, exports=False)
    out = tmp_path / "figs"
    with pytest.raises(UserError, match=r"run bare: no analysis export under .*bare/export"):
        plot_targets([bare.path], out)
    queued = make_fake_run(ws, "waiting", state="queued", exports=False)
    with pytest.raises(UserError, match="run waiting: no epoch events to draw training curves"):
        plot_targets([queued.path], out, kinds=["curves"])
    with pytest.raises(UserError, match="unknown format 'jpg'; choose from png, svg, pdf"):
        plot_targets([bare.path], out, ["jpg"])
    with pytest.raises(UserError, match="unknown figure 'pie'"):
        plot_targets([bare.path], out, kinds=["pie"])
    with pytest.raises(UserError, match="unknown split 'train'"):
        plot_targets([bare.path], out, split="train")
    with pytest.raises(UserError, match="run folder not found"):
        plot_targets([Target("x", (tmp_path / "nope",))], out)
    assert not out.exists()
    curves = plot_targets([bare.path], out, kinds=["curves"])  # curves need only the events
    check_png(curves[0], "curves")


def test_startup_imports_leave_the_heavy_libraries_out() -> None:
    code = (
        "import sys, amc_tui.cli, amc_tui.tui.app, amc_tui.sweeps.sweep, amc_tui.sweeps.stats; "
        "print(','.join(m for m in ('matplotlib', 'scipy', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_text_fits_its_figure_whatever_the_labels(
    runs: dict[str, RunDir], tmp_path: Path
) -> None:
    import matplotlib

    from amc_tui.sweeps import plot

    long = "accuracy-sweep-with-a-rather-long-name:p{} image.normalize=log1p loss.weighting={}"
    targets = [Target(long.format(i, w), (runs["a1"].path, runs["a2"].path))
               for i, w in enumerate(("uncertainty", "dwa", "equal"))]  # fmt: skip
    split, loaded = plot._load(targets, plot.KINDS, "auto")
    with matplotlib.rc_context(plot.STYLE):
        figs = [plot._fig_snr(loaded, "test split"), plot._fig_bands(loaded, "test split")]
        figs += [plot._draw(k, targets[0], loaded[0][1], "test split")
                 for k in plot.KINDS if k not in plot.OVERLAID]  # fmt: skip
        assert any(plot.outside(f) for f in figs)  # unfitted, the long titles leave the canvas
        for fig in figs:
            plot.fit(fig)
            fig.draw_without_rendering()
            r = fig.canvas.get_renderer()
            box = fig.bbox
            for t in plot._texts(fig):
                e = t.get_window_extent(r)
                assert box.x0 - 0.5 <= e.x0 and e.x1 <= box.x1 + 0.5, t.get_text()
                assert box.y0 - 0.5 <= e.y0 and e.y1 <= box.y1 + 0.5, t.get_text()
            assert not plot.overflows(fig)  # tick labels too (the tight bbox)
    # the title is wrapped, not cut: every word of the labels is still in the file
    svg = plot_targets(targets, tmp_path / "long", ["svg"], kinds=["snr"])[0].read_text()
    assert "loss.weighting=equal" in svg and "image.normalize=log1p" in svg


def test_accuracy_plots_draw_the_chance_line(runs: dict[str, RunDir], tmp_path: Path) -> None:
    paths = plot_targets([runs["c"].path], tmp_path / "c", ["svg"],
                         kinds=["snr", "snr_mod", "curves", "knee", "bands"])  # fmt: skip
    texts = {p.stem.split("_c")[0] if p.stem != "acc_vs_snr" else p.stem: p.read_text()
             for p in paths}  # fmt: skip
    # 4 modulations x 11 SNRs in the fake export: chance 25 % (mod), 1/44 (combined)
    assert "chance (1 / classes of the head)" in texts["acc_vs_snr"]
    assert "chance (2.3%)" in texts["acc_vs_snr_per_mod"]
    assert "chance (25.0%)" in texts["knee"] and "dotted: 50% and 90%" in texts["knee"]
    assert texts["curves"].count("chance (") >= 3
    assert "chance (1 / classes of the head)" in texts["acc_by_snr_band"]
    check_png(plot_targets([runs["c"].path], tmp_path / "p", kinds=["knee"])[0], "knee")


def test_band_bars_are_the_runs_mean_by_hand(runs: dict[str, RunDir]) -> None:
    import csv

    from amc_tui.sweeps import plot

    group = Target("point-1", (runs["a1"].path, runs["a2"].path))
    _, loaded = plot._load([group], ["bands"], "test")
    fig = plot._fig_bands(loaded, "test split")
    for ax, metric in zip(fig.axes, ("acc_mod", "acc_snr"), strict=True):
        per_run = []
        for run in group.runs:
            k: dict[int, float] = {}
            n: dict[int, int] = {}
            with open(run / "export" / "final" / "per_cell.csv", newline="") as f:
                for r in csv.DictReader(f):
                    b = 0 if int(r["snr_db"]) < 0 else 1 if int(r["snr_db"]) < 10 else 2
                    k[b] = k.get(b, 0) + round(float(r[metric]) * int(r["n"]))
                    n[b] = n.get(b, 0) + int(r["n"])
            per_run.append([k[b] / n[b] for b in sorted(n)])
        want = [100 * sum(v) / len(v) for v in zip(*per_run, strict=True)]
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx(want)
