"""Checkpoints and model building: weights-only loading, one-line errors, seed-format files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from train_fixtures import TINY_SWIN

from amc_tui.errors import UserError
from amc_tui.train import checkpoint as ckpt
from amc_tui.train.model import ModelError, build_model, load_weights
from amc_tui.train.preflight import checkpoint_file

torch.set_num_threads(1)


def tiny(seed: int = 0, n_mod: int = 4):
    torch.manual_seed(seed)
    return build_model("swin_tiny", 1, 32, n_mod, 11, 0.1, TINY_SWIN)


class Payload:
    """Unpickling this runs os.system: a checkpoint "from elsewhere" carrying code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_evil(path: Path, marker: Path) -> Path:
    torch.save({"format": ckpt.FORMAT, "model": {}, "x": Payload(marker)}, path)
    return path


def one_line(e: BaseException) -> str:
    text = str(e)
    assert "\n" not in text and text
    return text


def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = write_evil(tmp_path / "evil.pt", marker)
    with open(evil, "rb") as f:  # the payload is real: plain pickle loading would run it
        assert b"system" in f.read()
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.load(evil)
    assert "refused" in one_line(e.value) and "system" in str(e.value)
    assert not marker.exists()
    assert isinstance(e.value, UserError)


def test_corrupt_truncated_and_empty_files(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    ckpt.save(good, {"format": ckpt.FORMAT, "model": tiny().state_dict()})
    data = good.read_bytes()
    cases = {
        "garbage.pt": b"this is not a checkpoint" * 20,
        "truncated.pt": data[: len(data) // 2],
        "empty.pt": b"",
        "pickled-list.pt": pickle.dumps([1, 2, 3]),
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ckpt.CheckpointError) as e:
            ckpt.load(p)
        assert str(p) in one_line(e.value)
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_temp_files(tmp_path: Path) -> None:
    p = tmp_path / "ck" / "last.pt"
    ckpt.save(p, {"a": torch.arange(3)})
    ckpt.save(p, {"a": torch.arange(4)})
    assert [x.name for x in p.parent.iterdir()] == ["last.pt"]
    assert torch.equal(ckpt.load(p)["a"], torch.arange(4))


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    state = ckpt.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_seed_format_bare_state_dict_seeds_weights(tmp_path: Path) -> None:
    src = tiny(seed=1)
    seed_file = tmp_path / "best_model_swin_tiny_epoch_1.pth"
    # the seed's files came from DataParallel runs: keys prefixed with "module."
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, seed_file)
    state = ckpt.load(seed_file)
    assert not ckpt.is_full(state)
    dst = tiny(seed=2)
    n = load_weights(dst, ckpt.bare_state_dict(state, seed_file), seed_file)
    assert n == len(src.state_dict())
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)
    # a backbone-only file (timm keys) seeds the backbone and leaves the heads alone
    bb = tmp_path / "backbone.pth"
    torch.save(src.backbone.state_dict(), bb)
    dst = tiny(seed=3)
    head = dst.mod_head[1].weight.clone()
    load_weights(dst, ckpt.bare_state_dict(ckpt.load(bb), bb), bb)
    assert torch.equal(dst.backbone.patch_embed.proj.weight, src.backbone.patch_embed.proj.weight)
    assert torch.equal(dst.mod_head[1].weight, head)


def test_other_architecture_gives_one_line(tmp_path: Path) -> None:
    other = build_model("resnet18", 1, 32, 4, 11, 0.1)
    p = tmp_path / "resnet.pth"
    torch.save(other.state_dict(), p)
    with pytest.raises(ModelError) as e:
        load_weights(tiny(), ckpt.bare_state_dict(ckpt.load(p), p), p)
    assert "another architecture" in one_line(e.value) or "matches" in str(e.value)
    # same backbone, different head size (other class list): a shape mismatch, named
    four = tiny(n_mod=4)
    p2 = tmp_path / "four.pth"
    torch.save(four.state_dict(), p2)
    with pytest.raises(ModelError) as e:
        load_weights(tiny(n_mod=6), ckpt.load(p2), p2)
    assert "mod_head" in one_line(e.value)


def test_unknown_arch_and_rejected_kwargs_are_one_line() -> None:
    with pytest.raises(ModelError) as e:
        build_model("swin_tinyy_patch4", 1, 32, 4, 11)
    assert "unknown arch" in one_line(e.value)
    with pytest.raises(ModelError) as e:
        build_model("swin_tiny", 1, 32, 4, 11, 0.1, {"window_size": 4, "wndow": 3})
    assert "wndow" in one_line(e.value)
    with pytest.raises(ModelError) as e:  # a kwarg of the wrong type fails inside timm
        build_model("swin_tiny", 1, 32, 4, 11, 0.1, {"window_size": "big"})
    assert "swin_tiny_patch4_window7_224" in one_line(e.value)


def test_families_without_img_size_and_channels() -> None:
    m = build_model("resnet18", 3, 40, 5, 7)
    a, b = m(torch.zeros(2, 3, 40, 40))
    assert a.shape == (2, 5) and b.shape == (2, 7)


def test_checkpoint_file_takes_the_recorded_path_and_names_the_key(tmp_path: Path) -> None:
    """The launcher records an absolute file; a relative one is the workspace's. Nothing else
    is searched: a run name or directory is not a file here."""
    ws = tmp_path / "ws"
    seed = ws / "seeds" / "best_model_swin_tiny_epoch_1.pth"
    seed.parent.mkdir(parents=True)
    seed.write_bytes(b"x")
    assert checkpoint_file(str(seed), "model.weights", ws) == seed
    assert checkpoint_file("seeds/best_model_swin_tiny_epoch_1.pth", "run.resume", ws) == seed
    with pytest.raises(ckpt.CheckpointError) as e:
        checkpoint_file("seeds/gone.pth", "model.weights", ws)
    assert one_line(e.value).startswith("model.weights = 'seeds/gone.pth': no such file")
    assert str(ws / "seeds" / "gone.pth") in str(e.value)
    with pytest.raises(ckpt.CheckpointError) as e:  # a directory (or a run name) is no file
        checkpoint_file(str(seed.parent), "run.resume", ws)
    assert one_line(e.value) == f"run.resume = {str(seed.parent)!r}: no such file"
