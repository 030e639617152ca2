"""Model architectures a config may name: our aliases and the timm families let through.

Checked without importing timm (this runs in the CLI and the app); the trainer asks timm
itself about a pass-through name.
"""

from __future__ import annotations

import difflib

from amc_tui.errors import ConfigError

ARCH_ALIASES: dict[str, str] = {
    "swin_tiny": "swin_tiny_patch4_window7_224",
    "swin_small": "swin_small_patch4_window7_224",
    "swin_base": "swin_base_patch4_window7_224",
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "vit_tiny": "vit_tiny_patch16_224",
    "vit_small": "vit_small_patch16_224",
}
# timm family prefixes: a name starting with one of these passes through to the trainer,
# which asks timm itself (this process must not import timm).
TIMM_FAMILIES = (
    "swin", "swinv2", "resnet", "resnetv2", "resnext", "seresnet", "wide_resnet", "res2net",
    "vit", "deit", "beit", "eva", "cait", "convnext", "convnextv2", "efficientnet",
    "efficientvit", "mobilenetv2", "mobilenetv3", "mobilenetv4", "mobilevit", "regnetx",
    "regnety", "regnetz", "densenet", "maxvit", "coatnet", "levit", "xcit", "edgenext",
    "ghostnet", "fastvit", "hrnet", "inception", "vgg", "dla", "dpn", "poolformer", "pvt",
    "tiny_vit", "caformer", "convformer", "focalnet", "repvit", "rexnet", "cspresnet",
    "cspdarknet", "darknet", "hgnet", "lcnet", "mnasnet", "nfnet", "tresnet", "twins",
    "crossvit", "gcvit", "davit", "volo", "visformer", "resmlp", "gmlp", "mixer", "tf_",
    "test_",
)  # fmt: skip


def resolve_arch(arch: str) -> str:
    """The timm model name for an alias; other names pass through unchanged."""
    return ARCH_ALIASES.get(arch, arch)


def check_arch(arch: str) -> None:
    """Refuse names that are neither an alias nor shaped like a timm name (near-misses of an
    alias included); the trainer validates pass-through names against timm itself."""
    if arch in ARCH_ALIASES or arch in ARCH_ALIASES.values():
        return
    close = difflib.get_close_matches(arch, list(ARCH_ALIASES), n=3, cutoff=0.75)
    family = arch.split("_")[0].rstrip("0123456789")
    known_family = any(arch.startswith(f) for f in TIMM_FAMILIES if "_" in f) or any(
        family == f.rstrip("0123456789") for f in TIMM_FAMILIES
    )
    if close or not known_family or "_" not in arch and not arch[-1:].isdigit():
        hint = close or difflib.get_close_matches(
            arch, list(ARCH_ALIASES) + list(ARCH_ALIASES.values()), n=3, cutoff=0.4
        )
        raise ConfigError(
            f"unknown arch {arch!r} in [model]; "
            + (f"close names: {', '.join(hint)}" if hint else f"aliases: {', '.join(ARCH_ALIASES)}")
            + " (or a full timm model name)"
        )
