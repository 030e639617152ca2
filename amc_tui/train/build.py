"""Everything one training step needs, built from a Config in one place.

The trainer (`loop.Trainer.setup`) and the benchmark (`bench.measure_model`) both call
`build`, and both step through `Built.train_step`, so the benchmark times the trainer's own
path: the same device settings and threads, model and memory format, AMP dtype and
GradScaler, AdamW parameter groups, gradient clipping and compile (and its mode). A second copy of any of
these would let the two drift apart unnoticed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from amc_tui.config import Config
from amc_tui.errors import UserError
from amc_tui.train import checkpoint as ckpt
from amc_tui.train.constellation import Renderer
from amc_tui.train.losses import Weighting, make_weighting, mod_loss, snr_loss
from amc_tui.train.model import DualHead, build_model, load_weights

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# torch.compile modes that capture CUDA graphs (a new batch shape records another graph)
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


# --------------------------------------------------------------------------- device


def pick_device(spec: str) -> torch.device:
    """The torch device for `run.device`; CUDA devices always carry an index (the launcher
    narrows CUDA_VISIBLE_DEVICES to the assigned GPU, so "auto"/"cuda" mean index 0)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"run.device = {spec!r} but CUDA is not available on this machine")
    device = torch.device(spec)
    return torch.device("cuda", 0) if device.type == "cuda" and device.index is None else device


def visible_gpus() -> list[int]:
    """Physical GPU indices this process sees (from CUDA_VISIBLE_DEVICES when it holds ints)."""
    if not torch.cuda.is_available():
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        try:
            return [int(x) for x in env.split(",") if x.strip()]
        except ValueError:
            pass
    return list(range(torch.cuda.device_count()))


def use_device(device: torch.device, threads: int = 0) -> None:
    """Process-wide settings training runs with: `train.threads` (0 = torch's default) and,
    on CUDA, the current device, TF32 matmuls/convolutions and cuDNN autotuning."""
    if threads > 0:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        if device.index is not None:
            torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def resolve_amp(setting: str, cuda: bool) -> str:
    """`train.amp` as used: "auto" is bf16 on CUDA and off on the CPU; fp16 needs CUDA (its
    GradScaler), so it is off on the CPU."""
    amp = setting if setting != "auto" else ("bf16" if cuda else "off")
    return "off" if amp == "fp16" and not cuda else amp


# --------------------------------------------------------------------------- parts


def param_groups(model: nn.Module, weighting: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: every trainable model parameter decays with `train.weight_decay`; the loss
    weighting's (the uncertainty log-variances) never do, since decay would pull each task's
    sigma^2 towards 1 instead of letting the losses set it."""
    groups: list[dict[str, Any]] = [
        {"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}
    ]
    wparams = [p for p in weighting.parameters() if p.requires_grad]
    if wparams:
        groups.append({"params": wparams, "weight_decay": 0.0})
    return groups


def seed_weights(model: DualHead, weighting: Weighting, path: Path) -> int:
    """Load a weights file (ours or a bare state_dict) into a fresh model; a full checkpoint
    also brings its loss weighting when that fits. Returns the number of tensors loaded."""
    state = ckpt.load(path)
    n = load_weights(model, ckpt.bare_state_dict(state, path), path)
    if ckpt.is_full(state) and isinstance(state.get("weighting"), dict):
        with contextlib.suppress(Exception):
            weighting.load_state_dict(state["weighting"])
    return n


class Step(NamedTuple):
    """What one training step leaves for the caller's bookkeeping (all on the device)."""

    mod_logits: torch.Tensor
    snr_logits: torch.Tensor
    loss_mod: torch.Tensor
    loss_snr: torch.Tensor
    total: torch.Tensor


@dataclass
class Built:
    model: DualHead
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # compiled or model
    weighting: Weighting
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    renderer: Renderer
    device: torch.device
    amp: str  # "bf16", "fp16" or "off"
    amp_dtype: torch.dtype | None
    channels_last: bool
    grad_clip: float
    snr_distance_weight: float
    # several processes (dist.Dist.wrap): the DDP forward for training, and what averages
    # the gradients DDP does not see (the loss weighting's) after backward
    train_forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    after_backward: Callable[[], None] | None = None
    cudagraphs: bool = False  # the compiled forward replays CUDA graphs

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def images(self, iq: torch.Tensor) -> torch.Tensor:
        """Frames (B,N,2) on the device -> the model's input images."""
        x = self.renderer(iq)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def losses(
        self, mod_logits: torch.Tensor, snr_logits: torch.Tensor, mod: torch.Tensor,
        snr: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        return mod_loss(mod_logits, mod), snr_loss(snr_logits, snr, self.snr_distance_weight)

    def train_step(self, x: torch.Tensor, mod: torch.Tensor, snr: torch.Tensor) -> Step:
        """Forward under autocast, weighted loss, scaled backward, optional clipping of the
        model's gradient norm (unscaled first), optimizer step. No host sync."""
        if self.cudagraphs:  # a new iteration: the previous step's graph outputs may be reused
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            mod_logits, snr_logits = (self.train_forward or self.forward)(x)
        lm, ls = self.losses(mod_logits, snr_logits, mod, snr)
        total = self.weighting.combine({"mod": lm, "snr": ls})
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.after_backward is not None:
            self.after_backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return Step(mod_logits, snr_logits, lm, ls, total)


def build(
    cfg: Config,
    device: torch.device,
    n_mod: int,
    n_snr: int,
    seed_from: Sequence[tuple[str, Path]] = (),
) -> Built:
    """The model (seeded from the `(config key, file)` pairs of `seed_from` in order, on the
    CPU), moved to `device` in the configured memory format, with its loss weighting, AMP,
    optimizer and renderer. A file that cannot seed the model fails naming its key, so the
    user knows whether `model.weights` or `run.resume` is wrong."""
    im, m, t = cfg.image, cfg.model, cfg.train
    use_device(device, t.threads)
    model = build_model(m.arch, im.channels, im.size, n_mod, n_snr, m.dropout, m.backbone_kwargs)
    weighting = make_weighting(cfg.loss.weighting, cfg.loss.weights)
    for key, path in seed_from:
        try:
            n = seed_weights(model, weighting, path)
        except UserError as e:
            raise type(e)(f"{key}: {e}") from None
        print(f"weights: {n} tensors from {path}", flush=True)
    cuda = device.type == "cuda"
    channels_last = t.channels_last is True or (t.channels_last == "auto" and cuda)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    weighting.to(device)
    amp = resolve_amp(t.amp, cuda)
    optimizer = torch.optim.AdamW(
        param_groups(model, weighting, t.weight_decay), lr=t.lr, **({"fused": True} if cuda else {})
    )
    return Built(
        model=model,
        forward=torch.compile(model, mode=t.compile_mode) if t.compile else model,
        weighting=weighting,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler("cuda", enabled=amp == "fp16"),
        renderer=Renderer(im.size, im.range, im.normalize, im.channels),
        device=device,
        amp=amp,
        amp_dtype=AMP_DTYPES.get(amp),
        channels_last=channels_last,
        grad_clip=t.grad_clip,
        snr_distance_weight=cfg.loss.snr_distance_weight,
        cudagraphs=t.compile and cuda and t.compile_mode in CUDAGRAPH_MODES,
    )
