"""Figures of the code's shape, for a checkout: modules at the top of amc_tui/, import circles
between its packages and top-level modules, and imports inside functions (of amc_tui modules,
and of the rest). Reads the source as text (ast): nothing is imported.

    python docs/layout_stats.py [CHECKOUT] [--json]

To compare with an older commit: `git worktree add /tmp/old COMMIT` and measure /tmp/old.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path


def module_names(pkg: Path) -> dict[str, Path]:
    out = {}
    for p in pkg.rglob("*.py"):
        if "__pycache__" in p.parts:
            continue
        parts = list(p.relative_to(pkg.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(mods: dict[str, Path]) -> list[tuple[str, str, bool, int]]:
    """(importer, imported amc_tui module or external name, inside a function?, line)."""
    out = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        in_func = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                in_func |= {
                    id(s) for s in ast.walk(node) if isinstance(s, ast.Import | ast.ImportFrom)
                }
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    here = here[: len(here) - node.level + 1]
                    base = ".".join(here + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for t in targets:
                while t.startswith("amc_tui") and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                out.append((name, t, id(node) in in_func, node.lineno))
    return out


def part(module: str) -> str:
    """The package (or top-level module) a module belongs to: amc_tui.X."""
    return ".".join(module.split(".")[:2])


def circles(edges: set[tuple[str, str]]) -> list[list[str]]:
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def measure(checkout: Path) -> dict:
    pkg = checkout / "amc_tui"
    mods = module_names(pkg)
    found = imports(mods)
    inner = [(a, b, f, n) for a, b, f, n in found if b.startswith("amc_tui.") and b in mods]
    between = {(part(a), part(b)) for a, b, _, _ in inner if part(a) != part(b)}
    lines = sum(len(p.read_text().splitlines()) for p in mods.values())
    in_func_own = len({(a, n) for a, _, f, n in inner if f})  # statements
    return {
        "modules": len(mods),
        "lines": lines,
        "top_level_modules": len([p for p in pkg.glob("*.py") if p.name != "__init__.py"]),
        "circles_between_parts": circles(between),
        "imports_in_functions_of_amc_tui": in_func_own,
        "imports_in_functions_of_amc_tui_per_1000_lines": round(1000 * in_func_own / lines, 1),
        "imports_in_functions_other": len(
            {(a, n) for a, b, f, n in found if f and not b.startswith("amc_tui")}
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = measure(Path(args.checkout))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
