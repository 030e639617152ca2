"""What each mirror target needs: its package, its folder in the run directory, the W&B id.

`require_packages` is the creation-time check (`config check`, `amc-tui run`): a config that
asks for a mirror whose package is missing is refused with the install command, exit 2.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from amc_tui.config import MIRROR_PACKAGES, Config
from amc_tui.errors import ConfigError
from amc_tui.run.rundir import RunDir

TARGETS = tuple(MIRROR_PACKAGES)  # tensorboard, wandb
TB_DIR = "tensorboard"  # runs/<run>/tensorboard/: the event files
WANDB_DIR = "wandb"  # runs/<run>/wandb/: W&B's own folder (offline-run-*/, logs)
WANDB_ID_PREFIX = "amc-"


def install_hint(target: str) -> str:
    return f"pip install 'amc-tui[{target}]'"


def package_missing(target: str) -> bool:
    """True when the target's package cannot be imported here (found, not imported: cheap)."""
    try:
        return importlib.util.find_spec(MIRROR_PACKAGES[target]) is None
    except (ImportError, ValueError):  # a finder that refuses it, a broken install
        return True


def wanted(cfg: Config) -> list[str]:
    """The targets a config turns on, in TARGETS order."""
    m = cfg.mirror
    return [t for t, on in (("tensorboard", m.tensorboard), ("wandb", m.wandb != "off")) if on]


def require_packages(cfg: Config) -> None:
    """ConfigError (exit 2) naming the first mirror whose package is missing here."""
    for target in wanted(cfg):
        if package_missing(target):
            key = (
                "tensorboard = true" if target == "tensorboard" else f'wandb = "{cfg.mirror.wandb}"'
            )
            raise ConfigError(
                f"[mirror] {key} needs the {MIRROR_PACKAGES[target]} package: "
                f"{install_hint(target)}"
            )


def tb_dir(run: RunDir) -> Path:
    return run.path / TB_DIR


def wandb_dir(run: RunDir) -> Path:
    return run.path / WANDB_DIR


def wandb_id(run_id: str) -> str:
    """The W&B run id of an amc-tui run: the same on every attempt, so a resumed run goes on
    in the same W&B run (W&B ids allow letters, digits, - and _)."""
    return WANDB_ID_PREFIX + "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)


def offline_runs(run: RunDir) -> list[Path]:
    """The run's offline W&B runs not yet synced (`wandb sync` leaves a .wandb.synced file)."""
    out = []
    for folder in sorted(wandb_dir(run).glob("offline-run-*")):
        logs = list(folder.glob("run-*.wandb"))
        if logs and not all(p.with_name(p.name + ".synced").exists() for p in logs):
            out.append(folder)
    return out
