"""`amc-tui explain` on a really trained tiny model: maps of both heads per (modulation, SNR
band) with the image's shape, the model-randomisation sanity check (the trained model's maps
pass it, the input-as-map control fails it, loudly), resumable cells, refusals (no checkpoint,
unknown cell), the saliency figure, the RUNLOG section and the Explain screen (Pilot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_fixtures import TINY_CLASSES, copy_run, make_run, tiny
from tui_fixtures import make_app, screen_lines, wait_for

from amc_tui.run import saliency as sal
from amc_tui.run.rundir import RunDir, run_config
from amc_tui.runlog.sync import render_entry
from amc_tui.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
FRAMES = 4
TINY_BANDS = ["mid", "high"]  # the tiny config's 0..20 dB


def amc(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", "--workspace", str(ws), *args], cwd=ws,
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunDir, dict, dict]:
    """A copy of the shared tiny run (trained 2 epochs) in a workspace of its own, explained
    with integrated gradients and with the input control: (workspace, run, ig, input)."""
    shared = tiny(tmp_path_factory)
    assert shared.code == 0
    ws = tmp_path_factory.mktemp("explain_ws")
    for sub in ("configs", "runs", "data"):
        (ws / sub).mkdir()
    run = copy_run(shared.run, ws / "runs")
    meta = json.loads(run.meta.read_text())
    run.meta.write_text(json.dumps({**meta, "workspace": str(ws)}))  # its RUNLOG is ours
    out = amc(ws, "explain", run.name, "--frames", str(FRAMES), "--json")
    assert out.returncode == 0, out.stderr
    ig = json.loads(out.stdout)
    out = amc(ws, "explain", run.name, "--frames", str(FRAMES), "--method", "input", "--json")
    assert out.returncode == 0, out.stderr
    assert "MEANINGLESS" in out.stderr  # the control is flagged as it finishes
    return ws, run, ig, json.loads(out.stdout)


def test_maps_have_the_image_shape_per_head_and_cell_band(explained) -> None:
    _, run, ig, _ = explained
    cfg = run_config(run)
    shape = (cfg.image.channels, cfg.image.size, cfg.image.size)
    assert ig["method"] == "ig" and ig["split"] == "test"
    assert {(c["modulation"], c["band"]) for c in ig["cells"]} == {
        (m, b) for m in TINY_CLASSES for b in TINY_BANDS
    }
    folder = sal.export_dir(run.path, "ig", "test")
    for mod in TINY_CLASSES:
        for band in TINY_BANDS:
            z = sal.load_cell(folder, mod, band)
            assert z is not None and int(z["n"]) == FRAMES
            for key in ("image", "mod", "snr", "mod_random", "snr_random"):
                assert z[key].shape == shape, key
            for head in sal.HEADS:  # each frame's map sums to 1: the mean does too
                assert z[head].sum() == pytest.approx(1.0, abs=1e-4)
                assert z[f"sim_{head}"].shape == (FRAMES,)
            assert z["image"].max() > 0


def test_the_trained_models_maps_pass_the_randomisation_check(explained) -> None:
    _, _, ig, _ = explained
    s = ig["sanity"]
    assert s["threshold"] == sal.SANITY_THRESHOLD
    for head in (*sal.HEADS, "overall"):
        assert s["randomized_similarity"][head] < sal.SANITY_THRESHOLD, s
    assert s["passed"] is True and "passes the sanity check" in s["verdict"]


def test_a_weight_independent_map_is_flagged_meaningless(explained) -> None:
    _, _, _, control = explained
    s = control["sanity"]
    assert s["randomized_similarity"]["overall"] == pytest.approx(1.0)
    assert s["passed"] is False
    assert s["verdict"].startswith("MEANINGLESS: the map does not depend on the weights")


def test_a_rerun_skips_done_cells_and_redoes_a_missing_one(explained) -> None:
    ws, run, _, _ = explained
    folder = sal.export_dir(run.path, "ig", "test")
    done = sal.cell_file(folder, "QPSK", "high")
    before = {p.name: p.stat().st_mtime_ns for p in (folder / sal.CELLS_DIR).iterdir()}
    done.unlink()
    out = amc(ws, "explain", run.name, "--frames", str(FRAMES))
    assert out.returncode == 0, out.stderr
    assert "cell 1/1 QPSK@high" in out.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (folder / sal.CELLS_DIR).iterdir()}
    assert after.keys() == before.keys()
    assert [n for n in after if after[n] != before[n]] == [done.name]
    out = amc(ws, "explain", run.name, "--frames", str(FRAMES))
    assert "cells done already" in out.stderr and "passes the sanity check" in out.stdout


def test_unknown_cells_are_refused_with_one_line(explained) -> None:
    ws, run, _, _ = explained
    out = amc(ws, "explain", run.name, "--cells", "QPSK@loud")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "amc-tui: error: --cells: unknown SNR band 'loud'; choose from low, mid, high"
    ]


def test_a_run_without_a_checkpoint_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    for sub in ("configs", "runs", "data"):
        (tmp_path / sub).mkdir()
    run = make_run(tmp_path, "never-trained", tmp_path / "data" / "none.h5")
    out = amc(tmp_path, "explain", run.name)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no checkpoint to explain" in lines[0], out.stderr
    direct = subprocess.run(
        [sys.executable, "-m", "amc_tui.train.explain", "--run-dir", str(run.path)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
    )  # fmt: skip
    assert direct.returncode == 2 and len(direct.stderr.strip().splitlines()) == 1
    assert not run.export.exists()


def test_the_command_the_figure_and_the_app_never_import_torch() -> None:
    probe = (
        "import amc_tui.cli.explain, amc_tui.sweeps.saliency_plot, amc_tui.run.saliency, "
        "amc_tui.tui.screens.explain, amc_tui.runlog.entry, sys; "
        "print(sorted(m for m in ('torch', 'timm', 'captum') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the maths


def test_rank_similarity_is_one_for_the_same_map_and_near_zero_for_unrelated_ones() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((8, 1, 16, 16))
    assert np.allclose(sal.rank_similarity(a, a), 1.0)
    assert np.allclose(sal.rank_similarity(a, -3 * a), 1.0)  # |map|, scale-free
    assert abs(np.nanmean(sal.rank_similarity(a, rng.random(a.shape)))) < 0.1
    sparse = np.zeros((1, 1, 16, 16))
    sparse[0, 0, :4, :4] = rng.random((4, 4))
    other = np.zeros_like(sparse)
    other[0, 0, :4, :4] = rng.random((4, 4))
    # the shared empty pixels do not count: two unrelated maps on one support stay unrelated
    assert abs(sal.rank_similarity(sparse, other)[0]) < 0.6
    assert np.isnan(sal.rank_similarity(np.zeros((1, 4)), np.zeros((1, 4)))[0])


def test_ring_shares_follow_the_mass() -> None:
    size, half = 32, 1.5
    r = sal.pixel_radius(size, half)
    centre = (r < sal.RING_EDGES[0]).astype(float)[None]
    assert sal.ring_shares(centre, [half]) == {"centre": 1.0, "ring": 0.0, "outer": 0.0}
    outer = (r >= sal.RING_EDGES[1]).astype(float)[None]
    assert sal.ring_shares(outer, [half])["outer"] == 1.0
    assert sal.band_of(-6) == "low" and sal.band_of(-4) == "mid" and sal.band_of(10) == "high"
    assert [sal.band_of(s) for s in range(-20, 31, 2)].count(None) == 0


# --------------------------------------------------------------------------- figure, RUNLOG


def test_saliency_figures_carry_the_verdict_and_fit_whatever_the_label(
    explained, tmp_path: Path
) -> None:
    import matplotlib

    from amc_tui.sweeps.plot import STYLE
    from amc_tui.sweeps.saliency_plot import saliency_figure, texts_outside

    ws, run, _, _ = explained
    out = amc(ws, "plot", run.name, "--figures", "saliency", "--out", str(tmp_path / "figs"))
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == [f"saliency_mod_{run.name}.png", f"saliency_snr_{run.name}.png"]
    control = next(e for e in sal.list_exports(run.path) if e.method == "input")
    with matplotlib.rc_context(STYLE):
        fig = saliency_figure(control, "mod", "an-extremely-long-label-" * 10)
    texts = [t.get_text() for t in fig.texts]
    assert any("MEANINGLESS" in t for t in texts)
    assert texts_outside(fig) == []


def test_plot_saliency_without_an_export_says_how_to_make_one(tmp_path: Path) -> None:
    for sub in ("configs", "runs", "data"):
        (tmp_path / sub).mkdir()
    run = make_run(tmp_path, "plain-run", tmp_path / "data" / "none.h5")
    out = amc(tmp_path, "plot", run.name, "--figures", "saliency", "--out", "figs")
    assert out.returncode == 2
    assert f"make one with amc-tui explain {run.name}" in out.stderr
    assert not (tmp_path / "figs").exists()


def test_the_runlog_entry_has_an_explanations_section(explained) -> None:
    ws, run, _, _ = explained
    body = render_entry(run.path)
    section = body[body.index("### Explanations") :]
    assert "integrated gradients" in section and "passes the sanity check" in section
    assert "← **meaningless**" in section  # the input control, per head
    assert "### Explanations" in (ws / "RUNLOG.md").read_text()  # explain refreshed it


# --------------------------------------------------------------------------- the app


@pytest.mark.anyio
async def test_explain_screen_draws_maps_and_is_loud_about_the_control(explained) -> None:
    ws, run, _, _ = explained
    app = make_app(Workspace(ws))
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_explain(run.path)

        def text() -> str:
            return "\n".join(screen_lines(app))

        await wait_for(pilot, lambda: "frames," in text())
        assert "integrated gradients" in text() and "passes the sanity check" in text()
        assert text().count("▀") >= 2 * 32 * 8  # two panels of half-block cells
        assert f"{TINY_CLASSES[0]} @ mid" in text() and "trained" in text()
        await pilot.press("m", "b", "h", "r")
        await wait_for(pilot, lambda: f"{TINY_CLASSES[1]} @ high" in text())
        assert "SNR head" in text() and "randomised weights" in text()
        await pilot.press("e")
        await wait_for(pilot, lambda: "input (control)" in text())
        assert "MEANINGLESS" in text()
        verdict = app.screen.query_one("#ex-info").render()
        assert any("red" in str(span.style) for span in verdict.spans)


@pytest.mark.anyio
async def test_explain_screen_without_an_export_says_how_to_make_one(tmp_path: Path) -> None:
    for sub in ("configs", "runs", "data"):
        (tmp_path / sub).mkdir()
    run = make_run(tmp_path, "plain-run", tmp_path / "data" / "none.h5")
    app = make_app(Workspace(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_explain(run.path)
        await wait_for(pilot, lambda: "amc-tui explain plain-run" in "\n".join(screen_lines(app)))


def test_without_captum_explain_says_how_to_install_it(explained, tmp_path: Path) -> None:
    """captum is an optional extra: a Python where it cannot be imported gets one line naming
    the extra, exit 2, and no export folder for the method."""
    ws, run, _, _ = explained
    shadow = tmp_path / "shadow" / "captum"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no captum here')\n")
    env = {**os.environ, "PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO}"}
    out = subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", "--workspace", str(ws), "explain", run.name,
         "--method", "occlusion"],
        capture_output=True, text=True, env=env, timeout=120, cwd=ws,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "amc-tui: error: captum is not installed: pip install 'amc-tui[explain]' "
        "(or pip install captum)"
    ]
    assert not sal.export_dir(run.path, "occlusion", "test").exists()


def test_half_block_cells_pair_two_pixel_rows_and_shrink_to_fit() -> None:
    from amc_tui.tui.models import halfblock

    img = np.zeros((4, 2))
    img[0, 0] = 1.0  # top-left pixel bright: the first cell's upper half
    cells = halfblock.cells(img, halfblock.GREY)
    assert len(cells) == 2 and len(cells[0]) == 2
    assert cells[0][0] == ("#ffffff", "#000000") and cells[1][1] == ("#000000", "#000000")
    big = np.arange(224 * 224, dtype=float).reshape(224, 224)
    px = halfblock.layout(2, 224, width=78, rows=17)
    small = halfblock.shrink(big, px, 17)
    assert small.shape[1] * 2 + 2 <= 78 and small.shape[0] <= 2 * 17
    assert small.mean() == pytest.approx(big[: small.shape[0] * 7, : small.shape[1] * 7].mean())
