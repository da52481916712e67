"""Architecture rules, checked on the source: no import circle inside ``bench``, no module
importing another module's private (leading-underscore) name, and short functions in the
run layer (orchestration code a newcomer must be able to read)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench"
#: The run layer: orchestration, cells, executors, the record, the reduce step.
RUN_LAYER = ["runner.py", "cells.py", "executor/base.py", "executor/local.py",
             "executor/ray.py", "executor/factory.py", "record.py", "reduce.py", "protocols.py",
             "observe.py"]
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str, known: set[str]) -> list[tuple[str, list[str]]]:
    """(imported bench module, names taken from it) for every import in the file,
    at module level or inside functions alike."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] == "bench"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            if base.split(".")[0] != "bench":
                continue
            names = [a.name for a in node.names]
            # `from bench.metrics import beyond` imports a module, not a name
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in known]
            out += [(s, []) for s in subs]
            out.append((base, [n for n in names if f"{base}.{n}" not in known]))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _ in imports(path, name, known):
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name and not name.startswith(target + "."):
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle_and_sees_function_level_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "bench.runner" in edges["bench.cli"]  # imported inside a function there
    assert len(edges) > 80


def test_no_import_circle_in_bench():
    assert cycles(graph()) == []


def test_no_module_imports_a_private_name_from_another():
    mods = modules()
    known = set(mods)
    bad = []
    for name, path in mods.items():
        for target, names in imports(path, name, known):
            bad += [f"{name} imports {target}.{n}" for n in names if n.startswith("_")
                    and not n.startswith("__")]
    assert bad == []


def test_no_test_imports_a_private_name_from_bench():
    known = set(modules())
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for target, names in imports(path, module_name(path), known):
            bad += [f"{path.relative_to(ROOT)}: {target}.{n}" for n in names
                    if n.startswith("_") and not n.startswith("__")]
    assert bad == []


@pytest.mark.parametrize("file", RUN_LAYER)
def test_run_layer_functions_are_short(file):
    tree = ast.parse((PACKAGE / file).read_text())
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
