"""`python -m amc_tui.train.bench`: a real run on the tiny config, its JSON figures (no timed
assertions: speed belongs to the benchmark figures, not to tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from train_fixtures import REPO, TINY, make_data


def test_bench_json_report_with_a_synthetic_file(tmp_path) -> None:
    cfg = tmp_path / "tiny.toml"
    missing = tmp_path / "missing.h5"  # the bench makes a synthetic file instead
    cfg.write_text(TINY.format(name="bench", data=missing, epochs=1))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "amc_tui.train.bench", str(cfg), "--workspace", str(tmp_path),
         "--json", "--steps", "3", "--render-min-s", "0", "--render-frames", "64", "--frames-per-cell", "8",
         "--threads", "1"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    (run,) = report["runs"]
    assert run["train_steps"] == 3 and run["train_samples_per_s"] > 0
    assert run["infer_samples_per_s"] > 0 and run["size"] == 32
    assert set(run["split_ms_per_batch"]) == {"feed", "render", "forward_backward_step"}
    assert "synthetic" in run["data"] and not missing.exists()
    sizes = [r["size"] for r in report["render"]]
    assert sizes == [32, 64, 224]
    for r in report["render"]:
        assert r["mismatched_samples"] == 0  # identical counts to np.histogram2d
        assert r["frames_per_s"] > 0 and r["histogram2d_loop_frames_per_s"] > 0
    names = {f["name"] for f in report["figures"]}
    assert {"render_cpu_64", "render_cpu_224"} <= names
    for f in report["figures"]:
        assert {"name", "value", "unit", "baseline", "baseline_value", "ratio"} <= set(f)


def test_bench_missing_config_is_one_line(tmp_path, capsys) -> None:
    from amc_tui.train.bench import main  # in this process: a new one would import torch again

    assert main([str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "nope.toml" in err and err.startswith("amc-tui: error")


def test_make_data_reuses_an_existing_file(tmp_path) -> None:
    p = make_data(tmp_path / "d.h5", frames_per_cell=2)
    before = p.stat().st_mtime_ns
    assert make_data(p) == p and p.stat().st_mtime_ns == before
