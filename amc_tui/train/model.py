"""The dual-head network: a timm backbone (no classifier) with a modulation head and an SNR
head on its pooled features.

`pretrained` stays off (no network); a local weights file (`model.weights`) may seed the
backbone or the whole network. Problems a user can fix (unknown arch, a kwarg timm rejects,
an image size the backbone cannot take) raise `ModelError` with one line.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc_tui.config import resolve_arch
from amc_tui.errors import UserError


class ModelError(UserError):
    """The model cannot be built as configured (one line)."""


class DualHead(nn.Module):
    def __init__(self, backbone: nn.Module, n_mod: int, n_snr: int, dropout: float) -> None:
        super().__init__()
        self.backbone = backbone
        feat = int(backbone.num_features)
        self.mod_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat, n_mod))
        self.snr_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feat, n_snr))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone(x)
        return self.mod_head(f), self.snr_head(f)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def create_backbone(
    arch: str, channels: int, size: int, kwargs: dict[str, Any] | None = None
) -> nn.Module:
    """timm.create_model(num_classes=0, in_chans, img_size where the family takes it)."""
    import timm  # timm imports torchvision and torch._dynamo (~4 s): only to build a model

    name = resolve_arch(arch)
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"; close timm names: {', '.join(close)}" if close else ""
        raise ModelError(
            f"unknown arch {arch!r}: timm {timm.__version__} has no model {name!r}{hint}"
        )
    base: dict[str, Any] = {"pretrained": False, "num_classes": 0, "in_chans": channels}
    extra = dict(kwargs or {})
    try:
        try:
            return timm.create_model(name, **base, **{"img_size": size, **extra})
        except TypeError as e:
            if "img_size" not in str(e) or "img_size" in extra:
                raise
            return timm.create_model(name, **base, **extra)  # the family takes any size
    except (TypeError, ValueError, AssertionError, RuntimeError) as e:
        raise ModelError(
            f"timm rejected {name!r} with backbone_kwargs {extra}: {_one_line(e)}"
        ) from None


def build_model(
    arch: str,
    channels: int,
    size: int,
    n_mod: int,
    n_snr: int,
    dropout: float = 0.3,
    backbone_kwargs: dict[str, Any] | None = None,
) -> DualHead:
    """The network, checked with one dummy forward pass so a size the backbone cannot take
    fails here with one line, not deep inside the first training step."""
    model = DualHead(create_backbone(arch, channels, size, backbone_kwargs), n_mod, n_snr, dropout)
    model.eval()
    try:
        with torch.no_grad():
            mod, snr = model(torch.zeros(2, channels, size, size))
    except (RuntimeError, ValueError, AssertionError) as e:
        raise ModelError(
            f"{resolve_arch(arch)!r} cannot take {channels}x{size}x{size} images with "
            f"backbone_kwargs {backbone_kwargs or {}}: {_one_line(e)}"
        ) from None
    assert mod.shape == (2, n_mod) and snr.shape == (2, n_snr)
    model.train()
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_weights(model: DualHead, state: dict[str, torch.Tensor], source: str | Path) -> int:
    """Seed weights from a bare state_dict (the seed's `best_model_*.pth`, one of our own
    models, or a backbone alone). Keys may carry a `module.` (DataParallel) or `_orig_mod.`
    (torch.compile) prefix. Returns the number of tensors loaded; raises ModelError when
    nothing matches or a shape differs (another architecture)."""
    own = model.state_dict()
    clean = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "_orig_mod."):
            key = key.removeprefix(prefix)
        clean[key] = value
    # a backbone-only file has no "backbone." prefix
    if not any(k.startswith("backbone.") for k in clean):
        clean = {f"backbone.{k}": v for k, v in clean.items()}
    matched = {k: v for k, v in clean.items() if k in own}
    mismatched = [k for k, v in matched.items() if v.shape != own[k].shape]
    if mismatched:
        k = mismatched[0]
        raise ModelError(
            f"{source}: weights are for another architecture ({len(mismatched)} tensors differ "
            f"in shape, e.g. {k}: file {tuple(clean[k].shape)} vs model {tuple(own[k].shape)})"
        )
    if not matched:
        raise ModelError(f"{source}: no tensor in the file matches this model's parameters")
    missing = [k for k in own if k.startswith("backbone.") and k not in matched]
    if missing and len(matched) < len([k for k in own if k.startswith("backbone.")]) // 2:
        raise ModelError(
            f"{source}: weights are for another architecture (only {len(matched)} of "
            f"{len(own)} tensors match, e.g. missing {missing[0]})"
        )
    model.load_state_dict(matched, strict=False)
    return len(matched)
