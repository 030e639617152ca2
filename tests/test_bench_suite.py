"""The benchmark suite (benchmarks/): the --quick run end to end and its JSON schema, the GPU
script's CPU dry run with textual/tomli_w blocked, and the measuring helpers themselves.

No speed is asserted here (figures vary with the machine); the tests check that every figure
the issue asks for is produced, well formed, and that the checks inside the benchmarks (identical
counts, samples moved by float16) can tell right from wrong.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import FIGURE_KEYS, rate_figure, time_figure  # noqa: E402

MACHINE_KEYS = ("cpu", "cores", "python", "torch", "numpy", "device", "date")
REQUIRED = (  # figure name prefixes issue 6 asks for (ls/tui carry the run count)
    "render_cpu_64", "render_cpu_224", "feed_shuffled_contiguous", "feed_shuffled_chunked",
    "feed_float16_store", "train_samples_per_s", "infer_samples_per_s", "ls_", "tui_first_paint_",
    "train_two_cpu_runs_share",
)  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO)}


def test_quick_suite_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    p = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=280,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["suite"]["errors"] == {}
    for key in MACHINE_KEYS:
        assert data["machine"].get(key), key
    figs = data["figures"]
    names = [f["name"] for f in figs]
    assert len(names) == len(set(names))
    for prefix in REQUIRED:
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    for f in figs:
        for key in FIGURE_KEYS:
            assert key in f, (f["name"], key)
        assert isinstance(f["value"], float | int) and f["value"] > 0, f
        assert f["baseline_value"] > 0, f
        if "ratio = baseline / value" in f["unit"]:
            expect = f["baseline_value"] / f["value"]
        else:
            expect = f["value"] / f["baseline_value"]
        assert math.isclose(f["ratio"], expect, rel_tol=0.02, abs_tol=1e-3), f
    for f in figs:
        if f["name"].startswith("render_cpu_"):
            assert f["extra"]["identical_counts"] is True, f
    (share,) = [f for f in figs if f["name"] == "train_two_cpu_runs_share"]
    pair, solo = share["extra"]["pair"], share["extra"]["solo"]
    assert len(pair) == 2 and len(share["extra"]["each_over_solo"]) == 2
    assert math.isclose(share["value"], sum(r["samples_per_s"] for r in pair), rel_tol=0.01)
    cores = share["extra"]["usable_cores"]
    assert solo["threads"] == cores and all(1 <= r["threads"] <= cores for r in pair)
    f16 = data["findings"]["float16_storage"]
    assert {(r["codec"], r["size"]) for r in f16} >= {("float16", 64), ("float16", 224)}
    for r in f16:
        assert 0 <= r["samples_moved"] <= r["samples"]
        assert r["moved_beyond_neighbouring_bin"] == 0
    # the markdown table printed on stdout has one row per figure
    assert sum(line.startswith("| ") for line in p.stdout.splitlines()) == len(figs) + 1


def test_gpu_script_dry_run_on_cpu_without_textual(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--device", "cpu", "--size", "32",
        "--steps", "2", "--batch", "4", "--amp", "off", "--arch", "test_efficientnet",
        "--frames-per-cell", "1", "--out", str(out),
    ]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=200)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["blocked_modules_imported"] == []
    assert data["imports_blocked"] == ["textual", "tomli_w"]
    (run,) = data["runs"]
    assert run["train_steps"] == 2 and run["size"] == 32
    assert set(run["split_ms_per_batch"]) == {"feed", "render", "forward_backward_step"}
    names = [f["name"] for f in data["figures"]]
    assert any(n.startswith("gpu_train_samples_per_s[") for n in names)
    assert any(n.startswith("gpu_infer_samples_per_s[") for n in names)


def test_gpu_script_blocks_textual_and_tomli_w() -> None:
    code = (
        "import benchmarks.gpu as g; g.block_imports()\n"
        "for m in ('tomli_w', 'textual.app'):\n"
        "    try:\n        __import__(m)\n    except ImportError:\n        print('blocked', m)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=_env(), cwd=REPO, timeout=60)  # fmt: skip
    assert p.stdout.split("\n")[:2] == ["blocked tomli_w", "blocked textual.app"], p.stderr


def test_ratio_direction() -> None:
    r = rate_figure("x", 200.0, "frames/s", "b", 50.0)
    t = time_figure("y", 0.25, "goal", 0.5)
    assert r.ratio == 4.0 and t.ratio == 2.0
    assert "baseline / value" in t.unit
    assert set(FIGURE_KEYS) <= set(r.to_dict())


def test_histogram2d_baseline_matches_renderer() -> None:
    import torch

    from amc_tui.data.synth import make_cell
    from amc_tui.train.constellation import Renderer
    from benchmarks.bench_render import counts_identical, histogram2d_loop

    torch.set_num_threads(1)
    frames = np.concatenate([make_cell("16QAM", 10, 6), make_cell("BPSK", 30, 6)])
    ours = Renderer(64, 3.0, "log1p", 1)(torch.from_numpy(frames)).numpy()[:, 0]
    np.testing.assert_allclose(ours, histogram2d_loop(frames, 64), atol=1e-6)
    assert counts_identical(frames, 64) == (True, 0)


def test_storage_moves_counts_exactly() -> None:
    import torch

    from amc_tui.data.synth import make_cell
    from benchmarks.bench_render import storage_moves

    torch.set_num_threads(1)
    frames = np.concatenate([make_cell("64QAM", 30, 8), make_cell("QPSK", 0, 8)])
    moved = storage_moves(frames, 224)
    assert moved["samples"] == 16 * 1024
    assert 0 < moved["samples_moved"] < moved["samples"]  # float16 does move some samples
    exact = frames.astype(np.float16).astype(np.float32)  # already float16-representable
    assert storage_moves(exact, 224)["samples_moved"] == 0


def test_copy_layout_keeps_frames(tmp_path: Path) -> None:
    from benchmarks.datafiles import Files

    files = Files(tmp_path, fpc=1)
    src, dst = files.contiguous(), files.chunked(16)
    with h5py.File(src, "r") as a, h5py.File(dst, "r") as b:
        assert a["X"].chunks is None and b["X"].chunks == (16, 1024, 2)
        np.testing.assert_array_equal(a["X"][...], b["X"][...])
        np.testing.assert_array_equal(a["Y"][...], b["Y"][...])
        np.testing.assert_array_equal(a["Z"][...], b["Z"][...])


@pytest.mark.parametrize("area", ["bogus"])
def test_unknown_area_is_refused(area: str, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--only", area,
         "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and "unknown area" in p.stderr
    assert not (tmp_path / "r.json").exists()
