"""build.build: the one place the trainer and the benchmark get their model, optimizer and
training step from (a tiny Swin on the CPU)."""

from __future__ import annotations

import pytest
import torch
from train_fixtures import TINY_SWIN

from amc_tui.config import from_dict
from amc_tui.train.build import build, resolve_amp

torch.set_num_threads(1)


def tiny_cfg(**train: object):
    return from_dict({
        "data": {"path": "unused.h5"},
        "image": {"size": 32},
        "model": {"arch": "swin_tiny", "backbone_kwargs": TINY_SWIN},
        "train": {"lr": 1e-3, "weight_decay": 0.05, **train},
    })  # fmt: skip


def test_weight_decay_spares_the_loss_weighting() -> None:
    cfg = tiny_cfg()
    cfg.loss.weighting = "uncertainty"
    net = build(cfg, torch.device("cpu"), 4, 11)
    model_group, weighting_group = net.optimizer.param_groups
    assert model_group["weight_decay"] == 0.05 and weighting_group["weight_decay"] == 0.0
    assert {id(p) for p in weighting_group["params"]} == {id(net.weighting.log_var)}
    assert len(model_group["params"]) == len(list(net.model.parameters()))
    cfg.loss.weighting = "fixed"  # nothing to learn: one group
    assert len(build(cfg, torch.device("cpu"), 4, 11).optimizer.param_groups) == 1


def test_amp_as_used() -> None:
    assert [resolve_amp(a, cuda=False) for a in ("auto", "bf16", "fp16", "off")] == [
        "off", "bf16", "off", "off",
    ]  # fmt: skip
    assert [resolve_amp(a, cuda=True) for a in ("auto", "bf16", "fp16", "off")] == [
        "bf16", "bf16", "fp16", "off",
    ]  # fmt: skip
    net = build(tiny_cfg(amp="fp16"), torch.device("cpu"), 4, 11)
    assert net.amp == "off" and net.amp_dtype is None and not net.scaler.is_enabled()


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_train_step_clips_the_gradient_norm(clip: float) -> None:
    torch.manual_seed(0)
    net = build(tiny_cfg(grad_clip=clip), torch.device("cpu"), 4, 11)
    iq = torch.randn(8, 1024, 2)
    mod, snr = torch.randint(0, 4, (8,)), torch.randint(0, 11, (8,))
    before = [p.detach().clone() for p in net.model.parameters()]
    step = net.train_step(net.images(iq), mod, snr)
    assert step.mod_logits.shape == (8, 4) and step.snr_logits.shape == (8, 11)
    assert torch.isfinite(step.total) and step.total.dim() == 0
    norm = torch.nn.utils.get_total_norm([p.grad for p in net.model.parameters()])
    if clip:
        assert norm <= clip * 1.01
    else:
        assert norm > 1e-2  # what the clipped run brought down
    changed = [not torch.equal(a, p) for a, p in zip(before, net.model.parameters(), strict=True)]
    assert any(changed)  # the optimizer stepped


@pytest.mark.parametrize(
    ("mode", "graphs", "autotune"),
    [("default", False, False), ("reduce-overhead", True, False), ("max-autotune", True, True)],
)
def test_compile_mode_reaches_torch_compile(mode: str, graphs: bool, autotune: bool) -> None:
    net = build(tiny_cfg(compile=True, compile_mode=mode), torch.device("cpu"), 4, 11)
    assert net.forward is not net.model  # compiled lazily: nothing runs until the first step
    options = net.forward.get_compiler_config()
    assert options["triton.cudagraphs"] is graphs and options["max_autotune"] is autotune
    assert net.cudagraphs is False  # CUDA graphs only on a CUDA device
    plain = build(tiny_cfg(compile_mode=mode), torch.device("cpu"), 4, 11)
    assert plain.forward is plain.model  # the mode alone compiles nothing
