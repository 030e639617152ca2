"""The house's shape, checked: packages in layers with no circle between them (import-linter's
contracts in pyproject.toml), no amc_tui module imported inside a function to dodge a circle,
a small top level, and every module placed in docs/ARCHITECTURE.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "amc_tui"
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
# In-function imports allowed: heavy third-party libraries most paths never need (each line
# says why), and the trainer's entry loading the loop (torch) once the run's lock is taken.
HEAVY = {"torch", "timm", "torchvision", "matplotlib", "scipy", "optuna", "submitit", "pynvml",
         "numpy", "pandas",
         "tomli_w", "apprise", "captum", "tensorboard", "wandb"}  # fmt: skip
LAZY_OK = {("train/owner.py", "amc_tui.train.loop")}


def modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def function_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    out += [(sub.lineno, a.name) for a in sub.names]
                elif isinstance(sub, ast.ImportFrom) and sub.module:
                    out.append((sub.lineno, "." * sub.level + sub.module))
    return out


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout and "KEPT" in out.stdout


def test_imports_inside_functions_only_for_heavy_libraries_with_a_reason() -> None:
    bad = []
    for path in modules():
        rel = path.relative_to(PKG).as_posix()
        lines = path.read_text().splitlines()
        for lineno, name in function_imports(path):
            if (rel, name) in LAZY_OK:
                continue
            top = name.lstrip(".").split(".")[0]
            if top not in HEAVY:
                bad.append(f"{rel}:{lineno}: {name} (not a heavy optional library)")
            elif "#" not in lines[lineno - 1]:
                bad.append(f"{rel}:{lineno}: {name} (no reason given on the line)")
    assert bad == []


def test_top_level_is_small() -> None:
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 10, top


def test_every_module_is_placed_in_the_architecture() -> None:
    text = ARCHITECTURE.read_text()
    missing = []
    for path in modules():
        rel = path.relative_to(PKG).as_posix()
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if f"`{rel}`" not in text:
            missing.append(rel)
    assert missing == [], f"docs/ARCHITECTURE.md section 1 does not place {missing}"


def test_no_circle_between_packages_and_base_modules() -> None:
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import layout_stats
    finally:
        sys.path.remove(str(REPO / "docs"))
    shape = layout_stats.measure(REPO)
    assert shape["circles_between_parts"] == []
    assert shape["top_level_modules"] <= 10
