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
    "train_two_cpu_runs_share", "train_mirrors_on",
    "ls_50_runs_indexed_s", "tui_all_rows_50_runs_indexed_s",  # issue 21: the run index (area index)
)  # fmt: skip


def _env() -> dict[str, str]:
    # one torch thread: the suite's other worker shares the two cores (the trainers the
    # suite starts choose their own count)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


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
    (mirrors,) = [f for f in figs if f["name"] == "train_mirrors_on"]
    sides = [r["mirrors"] for r in mirrors["extra"]["runs"]]
    assert sorted(sides) == ["off", "on"] and all(r["tensorboard"] and r["wandb_offline"]
                                          for r in mirrors["extra"]["runs"] if r["mirrors"] == "on")  # fmt: skip
    f16 = data["findings"]["float16_storage"]
    assert {(r["codec"], r["size"]) for r in f16} >= {("float16", 64), ("float16", 224)}
    for r in f16:
        assert 0 <= r["samples_moved"] <= r["samples"]
        assert r["moved_beyond_neighbouring_bin"] == 0
    # the markdown table printed on stdout has one row per figure
    assert sum(line.startswith("| ") for line in p.stdout.splitlines()) == len(figs) + 1


def _gpu_dry_run(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    out = tmp_path / "gpu.json"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--device", "cpu", "--size", "32",
        "--steps", "2", "--batch", "4", "--amp", "off", "--arch", "test_efficientnet",
        "--frames-per-cell", "1", "--min-s", "0", "--warmup", "1", "--out", str(out), *extra,
    ]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=280)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["blocked_modules_imported"] == []
    assert data["imports_blocked"] == ["textual", "tomli_w"]
    assert data["errors"] == []
    return data, p.stdout


def _check_measured(r: dict, batch: int) -> None:
    assert "skipped" not in r and "error" not in r, r
    assert r["size"] == 32 and r["batch"] == batch and r["mode"] == "eager"
    assert r["timed_steps"] >= 2 and r["samples_per_s"] > 0 and r["first_step_s"] > 0
    assert set(r["split_ms"]) == {"feed", "render", "step_only"}
    assert 0 <= r["feed_render_share"] <= 1


def test_gpu_script_dry_run_on_cpu_without_textual(tmp_path: Path) -> None:
    """Every variant is in the JSON: measured when it can run on the CPU, else skipped as
    needing CUDA; the figures and the batch sweep come from the measured ones."""
    from benchmarks.gpu import NAMES, VARIANTS

    data, stdout = _gpu_dry_run(tmp_path, "--in-process", "--budget-s", "3000")
    assert list(data["variants"]) == list(NAMES)
    for lever in ("eager_", "eager-fused-attn_", "compile_", "reduce-overhead_", "max-autotune_",
                  "b512_64", "b1024_64", "ddp_"):  # fmt: skip
        assert any(n.startswith(lever) for n in NAMES), lever
    measured = []
    for v in VARIANTS:
        r = data["variants"][v.name]
        if v.mode not in ("eager", "best") or v.ddp:
            assert "needs CUDA" in r["skipped"], r
            continue
        _check_measured(r, 4 * v.batch_mult)
        if isinstance(v.fused_attn, bool):
            assert r["fused_attn"] is v.fused_attn
        else:  # chosen from the eager pair measured before it
            assert isinstance(r["fused_attn"], bool) and "fused attention" in r["why"][-1]
        measured.append(f"gpu_train_samples_per_s[{v.name}]")
    assert [f["name"] for f in data["figures"]] == measured
    assert set(data["summary"]["batch_sweep_64"]) == {"4", "8", "16"}
    assert "| b1024_64 | 32 | 16 | eager |" in stdout


def test_gpu_script_runs_a_variant_in_its_own_process(tmp_path: Path) -> None:
    data, _ = _gpu_dry_run(tmp_path, "--only", "eager_64")
    _check_measured(data["variants"]["eager_64"], 4)
    assert data["variants"]["eager_224"] == {
        "name": "eager_224", "group": 224, "skipped": "not selected",
    }  # fmt: skip


def test_gpu_variants_keep_what_helped() -> None:
    """A "best" variant takes the fastest mode at its size and fused attention only where
    it beat the plain one; the DDP one leaves CUDA graphs out and names its baseline."""
    import argparse

    from benchmarks.gpu import VARIANTS, resolve

    args = argparse.Namespace(size=0, batch=256)
    by = {v.name: v for v in VARIANTS}

    def run(name: str, mode: str, rate: float, fused: bool = False, mult: int = 1) -> dict:
        return {"name": name, "group": 64 if name.endswith("_64") else 224, "mode": mode,
                "samples_per_s": rate, "batch_mult": mult, "fused_attn": fused, "ddp": False}  # fmt: skip

    results = {n: run(n, m, r) for n, m, r in (
        ("eager_64", "eager", 4000.0), ("compile_64", "default", 9000.0),
        ("reduce-overhead_64", "reduce-overhead", 20000.0), ("eager_224", "eager", 2300.0))}  # fmt: skip
    results["eager-fused-attn_224"] = run("eager-fused-attn_224", "eager", 2320.0, fused=True)
    spec = resolve(by["b1024_64"], results, args)
    assert (spec["mode"], spec["batch"], spec["fused_attn"]) == ("reduce-overhead", 1024, False)
    assert resolve(by["ddp_64"], results, args)["mode"] == "default"  # no CUDA graphs
    assert resolve(by["ddp_64"], results, args)["one_gpu_samples_per_s"] == 9000.0
    results["eager-fused-attn_224"]["samples_per_s"] = 2500.0  # now 8.7 % better
    assert resolve(by["compile_224"], results, args)["fused_attn"] is True
    assert resolve(by["compile_64"], results, args)["fused_attn"] is True  # from 224 px
    assert resolve(by["b512_64"], {}, args)["mode"] == "eager"  # nothing measured yet


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
