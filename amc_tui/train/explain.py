"""`python -m amc_tui.train.explain --run-dir DIR [--split test|val] [--method ig|occlusion|input]
[--cells MODS@BANDS] [--frames N] [--steps N] [--force] [--device D]`: attribution maps of both heads per
(modulation, SNR band), with the model-randomisation sanity check (`run/saliency.py`).

`amc-tui explain` spawns this (only amc_tui/train/ imports torch). It loads the run's best
checkpoint (last.pt when there is no best.pt) on the run's device, renders the split's frames
as the trainer does (`constellation.Renderer`), and per cell takes at most `--frames` frames
(a fixed seeded choice, so a rerun sees the same frames). For each head the target is the
frame's true class (modulation, SNR level). The same maps are computed with a model of the same
architecture whose weights are freshly initialised (seed 0: every cell sees the same random
model), and each frame's maps are compared by rank correlation.

Bounded and resumable: one progress line per cell on stderr; each cell's arrays are written
atomically as it finishes and a rerun skips them (`--force` recomputes); `summary.json` is
written last. Exit 2 with one line for bad input (no checkpoint, unknown cell, captum missing),
with nothing written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amc_tui.config import with_data_path
from amc_tui.data.classes import resolve_classes, snr_range
from amc_tui.data.source import load_dataset
from amc_tui.errors import UserError
from amc_tui.fsutil import atomic_write_bytes, atomic_write_json, read_json
from amc_tui.run import saliency as sal
from amc_tui.run.rundir import RunDir, run_config, run_workspace
from amc_tui.train import checkpoint as ckpt
from amc_tui.train.build import pick_device, use_device
from amc_tui.train.constellation import Renderer
from amc_tui.train.model import build_model

RANDOM_SEED = 0  # the randomised model's init
FRAME_SEED = 0  # which frames of a cell are taken
IG_STEPS = 32
BATCH = 16  # frames per attribution call
IG_INTERNAL_BATCH = 128  # images per forward inside IG (bounds device memory on 224 px)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m amc_tui.train.explain")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--split", default="test", choices=sal.SPLITS)
    p.add_argument("--method", default="ig", choices=sal.METHODS)
    p.add_argument("--cells", default="")
    p.add_argument("--frames", type=int, default=sal.DEFAULT_FRAMES)
    p.add_argument("--steps", type=int, default=IG_STEPS, help="integrated-gradients steps")
    p.add_argument("--force", action="store_true", help="recompute cells already done")
    p.add_argument("--device", help="instead of the run's run.device (cpu, cuda, cuda:1, auto)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return explain(args)
    except UserError as e:
        print(f"amc-tui: error: {e}", file=sys.stderr)
        return 2


def _check_captum(method: str) -> None:
    if method == "input":
        return
    try:
        import captum.attr  # noqa: F401  (captum, an optional extra: only these methods need it)
    except ImportError:
        raise UserError(
            "captum is not installed: pip install 'amc-tui[explain]' (or pip install captum)"
        ) from None


def explain(args: argparse.Namespace) -> int:
    run = RunDir(Path(args.run_dir).resolve())
    if not run.config.is_file():
        raise UserError(f"{run.path} is not a run (no config.toml)")
    ckpt_path = sal.checkpoint_of(run)
    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.steps < 2:
        raise UserError(f"--steps must be >= 2, got {args.steps}")
    _check_captum(args.method)

    cfg = with_data_path(run_config(run), run_workspace(run))
    classes = resolve_classes(cfg.data.classes)
    mods, bands = sal.parse_cells(args.cells, classes)
    snrs = snr_range(cfg.data.snr_min, cfg.data.snr_max)
    bands = [b for b in bands if any(sal.band_of(s) == b for s in snrs)]
    stat = ckpt_path.stat()
    params = {
        "method": args.method, "split": args.split, "frames": args.frames,
        "steps": args.steps if args.method == "ig" else None, "checkpoint": str(ckpt_path),
        "checkpoint_bytes": stat.st_size, "checkpoint_mtime": stat.st_mtime,
    }  # fmt: skip
    folder = sal.export_dir(run.path, args.method, args.split)
    cells = [(m, b) for m in mods for b in bands]
    old = read_json(folder / sal.PARAMS_FILE)
    fresh = old != params  # other parameters: the old cells are dropped
    redo = fresh or args.force  # --force recomputes the cells asked for
    todo = [c for c in cells if redo or not sal.cell_file(folder, *c).is_file()]
    if old is not None and fresh:
        _say(f"explain: parameters changed since {folder} was made: recomputing its cells")
    if todo:
        _compute(run, cfg, ckpt_path, args, params, folder, todo, fresh)
    else:
        _say(f"explain: all {len(cells)} cells done already ({folder}); --force recomputes")
    summary = summarize(folder, params, classes, snrs, cfg)
    atomic_write_json(folder / sal.SUMMARY_FILE, summary)
    _say(f"explain: {summary['sanity']['verdict']}")
    print(folder / sal.SUMMARY_FILE)
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- computing


def _compute(
    run: RunDir, cfg: Any, ckpt_path: Path, args: argparse.Namespace, params: dict[str, Any],
    folder: Path, todo: list[tuple[str, str]], fresh: bool,
) -> None:  # fmt: skip
    t0 = time.time()
    device = pick_device(args.device or cfg.run.device)
    use_device(device, cfg.train.threads)
    ds = load_dataset(cfg.data)
    try:
        source = ds.splits[args.split]
        if len(source) == 0:
            raise UserError(f"the {args.split} split of {run.name} is empty")
        im, m = cfg.image, cfg.model
        n_mod, n_snr = len(ds.classes), len(ds.snrs)

        def model(seed: int | None) -> Any:
            if seed is not None:
                torch.manual_seed(seed)
            return build_model(m.arch, im.channels, im.size, n_mod, n_snr, m.dropout,
                               m.backbone_kwargs)  # fmt: skip

        trained = model(None)
        trained.load_state_dict(ckpt.bare_state_dict(ckpt.load(ckpt_path), ckpt_path))
        randomized = model(RANDOM_SEED)
        for net in (trained, randomized):
            net.to(device).eval()
            for p in net.parameters():
                p.requires_grad_(False)
        renderer = Renderer(im.size, im.range, im.normalize, im.channels)
        attribute = _method(args.method, args.steps, im.size, im.channels)
        (folder / sal.CELLS_DIR).mkdir(parents=True, exist_ok=True)
        if fresh:
            for old in [folder / sal.SUMMARY_FILE, *(folder / sal.CELLS_DIR).glob("*.npz")]:
                old.unlink(missing_ok=True)
            atomic_write_json(folder / sal.PARAMS_FILE, params)
        _say(
            f"explain: {run.name} {sal.METHOD_NAMES[args.method]} on {args.split}, "
            f"{len(todo)} cells x <= {args.frames} frames, {device} ({ckpt_path.name}, "
            f"loaded in {time.time() - t0:.1f} s)"
        )
        band_snr = np.array([sal.band_of(s) or "" for s in ds.snrs])
        for i, (mod, band) in enumerate(todo, 1):
            t1 = time.time()
            rows = np.flatnonzero(
                (source.mod == ds.classes.index(mod)) & (band_snr[source.snr] == band)
            )
            rng = np.random.default_rng(
                [FRAME_SEED, ds.classes.index(mod), sal.BAND_NAMES.index(band)]
            )
            pick = np.sort(rng.permutation(rows)[: args.frames])
            arrays = _cell(pick, source, renderer, trained, randomized, attribute, device)
            atomic_write_bytes(sal.cell_file(folder, mod, band), sal.npz_bytes(arrays))
            sims = [sal.mean_or_none(arrays[f"sim_{h}"]) for h in sal.HEADS]
            _say(
                f"explain: cell {i}/{len(todo)} {mod}@{band}: {len(pick)} frames, rho mod "
                f"{_f(sims[0])} snr {_f(sims[1])} ({time.time() - t1:.1f} s)"
            )
    finally:
        ds.close()


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _method(name: str, steps: int, size: int, channels: int) -> Callable[..., Any]:
    """attribute(forward, x, target) -> attribution of x's shape."""
    if name == "input":
        return lambda forward, x, target: x.detach().clone()
    if name == "ig":
        from captum.attr import IntegratedGradients  # captum, an optional extra: IG only

        def ig(forward: Any, x: Any, target: Any) -> Any:
            return IntegratedGradients(forward).attribute(
                x, baselines=0.0, target=target, n_steps=steps,
                internal_batch_size=IG_INTERNAL_BATCH,
            )  # fmt: skip

        return ig
    from captum.attr import Occlusion  # captum, an optional extra: occlusion only

    window = max(1, size // 8)
    stride = max(1, window // 2)

    def occlusion(forward: Any, x: Any, target: Any) -> Any:
        return Occlusion(forward).attribute(
            x, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
            baselines=0.0, target=target, perturbations_per_eval=32,
        )  # fmt: skip

    return occlusion


def _cell(
    pick: np.ndarray, source: Any, renderer: Any, trained: Any, randomized: Any,
    attribute: Callable[..., Any], device: Any,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One cell's arrays (see run/saliency.py); zeros and n = 0 when it has no frame."""
    maps: dict[str, list[np.ndarray]] = {k: [] for k in ("image", "mod", "snr", "mod_random",
                                                         "snr_random")}  # fmt: skip
    correct: dict[str, list[np.ndarray]] = {h: [] for h in sal.HEADS}
    for a in range(0, len(pick), BATCH):
        iq, mod, snr = source.get(pick[a : a + BATCH])
        x = renderer(torch.from_numpy(np.ascontiguousarray(iq)).to(device)).float()
        targets = {"mod": torch.from_numpy(mod).to(device), "snr": torch.from_numpy(snr).to(device)}
        with torch.no_grad():
            outs = trained(x)
        maps["image"].append(x.cpu().numpy())
        for h_i, head in enumerate(sal.HEADS):
            correct[head].append((outs[h_i].argmax(1) == targets[head]).cpu().numpy())
            for net, key in ((trained, head), (randomized, f"{head}_random")):
                forward = _head(net, h_i)
                attr = attribute(forward, x.clone().requires_grad_(False), targets[head])
                maps[key].append(attr.detach().float().cpu().numpy())
    shape = (0, renderer.channels, renderer.size, renderer.size)
    cat = {k: np.concatenate(v) if v else np.zeros(shape, np.float32) for k, v in maps.items()}
    out: dict[str, np.ndarray] = {"n": np.array(len(pick))}
    out["image"] = cat["image"].mean(axis=0) if len(pick) else np.zeros(shape[1:], np.float32)
    for head in sal.HEADS:
        for key in (head, f"{head}_random"):
            per = sal.normalized(cat[key]) if len(pick) else cat[key]
            out[key] = (per.mean(axis=0) if len(pick) else np.zeros(shape[1:])).astype(np.float32)
        out[f"sim_{head}"] = sal.rank_similarity(cat[head], cat[f"{head}_random"])
        out[f"correct_{head}"] = (
            np.concatenate(correct[head]) if correct[head] else np.zeros(0, bool)
        )
    return out


def _head(net: Any, index: int) -> Callable[[Any], Any]:
    def forward(x: Any) -> Any:
        return net(x)[index]

    return forward


# --------------------------------------------------------------------------- summary


def summarize(
    folder: Path, params: dict[str, Any], classes: list[str], snrs: list[int], cfg: Any
) -> dict[str, Any]:
    """The summary of every cell in `folder` (this and earlier invocations' cells)."""
    ranges = [cfg.image.range / (2**c) for c in range(cfg.image.channels)]
    cells = []
    for mod in classes:
        for band in sal.BAND_NAMES:
            z = sal.load_cell(folder, mod, band)
            if z is None:
                continue
            n = int(z["n"])
            cell: dict[str, Any] = {"modulation": mod, "band": band, "n": n}
            if n:
                cell["similarity"] = {h: sal.mean_or_none(z[f"sim_{h}"]) for h in sal.HEADS}
                cell["accuracy"] = {h: round(float(z[f"correct_{h}"].mean()), 4)
                                    for h in sal.HEADS}  # fmt: skip
                cell["rings"] = {"image": sal.ring_shares(z["image"], ranges)}
                cell["rings"].update({h: sal.ring_shares(z[h], ranges) for h in sal.HEADS})
                cell["rings_random"] = {h: sal.ring_shares(z[f"{h}_random"], ranges)
                                        for h in sal.HEADS}  # fmt: skip
            cells.append(cell)
    per_head = {
        h: sal.mean_or_none([c["similarity"][h] for c in cells if c.get("similarity")
                             and c["similarity"][h] is not None])
        for h in sal.HEADS
    }  # fmt: skip
    overall = sal.mean_or_none([v for v in per_head.values() if v is not None])
    passed, line = sal.verdict(overall)
    head_verdicts = {h: sal.verdict(per_head[h])[0] for h in sal.HEADS}
    return {
        **{k: v for k, v in params.items() if k != "checkpoint_mtime"},
        "method_name": sal.METHOD_NAMES[params["method"]],
        "classes": classes,
        "snrs": snrs,
        "bands": {b: [s for s in snrs if sal.band_of(s) == b] for b in sal.BAND_NAMES},
        "image": {
            "channels": cfg.image.channels,
            "size": cfg.image.size,
            "ranges": ranges,
            "normalize": cfg.image.normalize,
        },  # fmt: skip
        "ring_edges": list(sal.RING_EDGES),
        "cells": cells,
        "sanity": {
            "randomized_similarity": {**per_head, "overall": overall},
            "threshold": sal.SANITY_THRESHOLD,
            "passed": passed,
            "passed_per_head": head_verdicts,
            "verdict": line,
            "random_seed": RANDOM_SEED,
        },
        "written_at": time.time(),
    }


if __name__ == "__main__":
    sys.exit(main())
