"""Issue 23.9: the code's structure stays as the guide asks: no import circles (imports
inside functions count too), no package named like a tool folder, sandbox patches by area."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TOOL_FOLDER_NAMES = {"build", "dist", "out", "tmp", "target", "bin", "lib", "vendor"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "amictl").rglob("*.py"):
        parts = p.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                deps.update(subs)
                if target in mods and len(subs) < len(node.names):
                    deps.add(target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in mods)
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_even_inside_functions():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_package_is_named_like_a_tool_folder():
    packages = {p.parent.name for p in (SRC / "amictl").rglob("__init__.py")}
    assert not packages & TOOL_FOLDER_NAMES


def test_sandbox_patches_are_a_package_by_area_with_one_helpers_module():
    pkg = SRC / "amictl" / "sandbox" / "patches"
    assert (pkg / "__init__.py").exists() and (pkg / "helpers.py").exists()
    assert not list((SRC / "amictl" / "sandbox").glob("patches_*.py"))
    graph = _graph()
    for area in pkg.glob("*.py"):
        if area.stem in ("__init__", "helpers"):
            continue
        assert "amictl.sandbox.patches" not in graph[f"amictl.sandbox.patches.{area.stem}"], area
