"""DESIGN section 1: only amc_tui/train/ imports torch, timm or torchvision."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "amc_tui"
HEAVY = ("torch", "timm", "torchvision")


@pytest.mark.parametrize("module", ["amc_tui.cli", "amc_tui.tui.app"])
def test_importing_leaves_torch_out(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_no_module_outside_train_imports_torch_even_lazily() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        if "train" in path.relative_to(PKG).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in HEAVY]
    assert offenders == []
