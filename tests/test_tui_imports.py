"""The app never imports torch, timm or torchvision (DESIGN section 1), not even when every
screen module is loaded, and keeps pandas off its startup path (first paint): the screen
registry (amc_tui/tui/registry.py) is its one lazy-load point, every other import of an
amc_tui module in tui/ sits at module level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from amc_tui.tui import registry

HEAVY = ("torch", "timm", "torchvision")
TUI = Path(registry.__file__).parent
MODULES = (
    "amc_tui.tui.app",
    "amc_tui.tui.bench",
    "amc_tui.tui.screens.dialogs",
    *(e.target.partition(":")[0] for e in registry.SCREENS.values()),
    *(t.partition(":")[0] for t in registry.RUN_ACTIONS.values()),
)


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().splitlines()[-1].split(","))


def test_app_and_every_screen_leave_torch_out() -> None:
    mods = _loaded_after(
        "import importlib\n"
        + "".join(f"importlib.import_module({m!r})\n" for m in MODULES)
        + "from amc_tui.tui.app import AmcApp\nfrom amc_tui.workspace import Workspace\n"
        + "AmcApp(Workspace.find('.'))"
    )
    assert not [m for m in HEAVY if m in mods]
    assert "amc_tui.tui.screens.live" in mods  # the probe did load them


def test_startup_path_is_light() -> None:
    mods = _loaded_after("import amc_tui.tui.app, amc_tui.tui.screens.runs")
    assert not {"pandas", "numpy", "h5py", "torch", "textual_plotext"} & mods
    assert not {"amc_tui.launch", "amc_tui.sweeps", "amc_tui.runlog", "amc_tui.run.analysis"} & mods


def test_registry_loads_a_screen_on_first_use() -> None:
    mods = _loaded_after(
        "import sys\nfrom amc_tui.tui import app, registry\n"
        "assert 'amc_tui.tui.screens.analysis' not in sys.modules\n"
        "cls = registry.screen_class('analysis')\n"
        "assert cls.__name__ == 'AnalysisScreen' and registry.name_of(cls.__new__(cls)) == 'analysis'"
    )
    assert {"amc_tui.tui.screens.analysis", "textual_plotext"} <= mods


def _nested_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, source line) of each import inside a function of `path`."""
    source = path.read_text()
    lines = source.splitlines()
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                out += [(node.lineno, a.name, lines[node.lineno - 1]) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                out.append(
                    (node.lineno, "." * node.level + (node.module or ""), lines[node.lineno - 1])
                )
    return out


def test_no_import_inside_a_function_but_heavy_third_party_with_a_reason() -> None:
    bad = []
    for path in sorted(TUI.rglob("*.py")):
        for line, module, text in _nested_imports(path):
            if module.startswith(("amc_tui", ".")) or "#" not in text:
                bad.append(f"{path.relative_to(TUI)}:{line}: {text.strip()}")
    assert not bad, "imports inside functions (use the screen registry):\n" + "\n".join(bad)


def test_the_registry_is_the_only_lazy_loader() -> None:
    users = sorted(
        str(p.relative_to(TUI))
        for p in TUI.rglob("*.py")
        if "importlib" in p.read_text() or "__import__" in p.read_text()
    )
    assert users == ["registry.py"]


def test_nested_import_check_catches_one(tmp_path: Path) -> None:
    """The check above is not vacuous: a function-level import of an amc_tui module is found."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from amc_tui.tui.screens.live import LiveScreen\n    return 1\n")
    assert [m for _, m, _ in _nested_imports(f)] == ["amc_tui.tui.screens.live"]
