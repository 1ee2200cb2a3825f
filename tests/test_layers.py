"""What lint-imports cannot say: the web app and compliance import no private name of the
collector, and no module of src/ imports itself round a cycle.

A ``_name`` is a module's own business; a page that borrows one breaks when the collector
tidies up, with no contract to warn. (The ORM models are kept out by an import-linter
contract in pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import roomwatch
import roomwatch.compliance
import roomwatch.web

WEB = Path(roomwatch.web.__file__).parent
COMPLIANCE = Path(roomwatch.compliance.__file__).parent
SRC = Path(roomwatch.__file__).parent


def private_imports(source: str) -> list[str]:
    """Each name imported from the collector in ``source`` with a private part (``_x``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [
            name
            for name in names
            if name.startswith("roomwatch.collector")
            and any(part.startswith("_") for part in name.split("."))
        ]
    return found


def test_the_check_sees_a_private_import() -> None:
    assert private_imports("from roomwatch.collector.incidents import _to_record") == [
        "roomwatch.collector.incidents._to_record"
    ]
    assert private_imports("import roomwatch.collector._secret") == ["roomwatch.collector._secret"]
    assert private_imports("from roomwatch.collector import audit, storage") == []


@pytest.mark.parametrize("package", [WEB, COMPLIANCE], ids=["web", "compliance"])
def test_no_private_name_of_the_collector_is_imported(package: Path) -> None:
    files = sorted(package.rglob("*.py"))
    assert files
    found = {
        str(path.relative_to(package)): names
        for path in files
        if (names := private_imports(path.read_text()))
    }
    assert found == {}


def module_imports(path: Path) -> set[str]:
    """The roomwatch modules ``path`` imports when it is loaded (not those imported inside
    functions or only for type checking, which cannot make a cycle at import time)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.startswith("roomwatch")}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (one path per cycle)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_check_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_src() -> None:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {
        name: {m for m in module_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own modules is how a package exports: not a cycle
    # of one module through another.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(f"{name}.")}
    assert cycles(graph) == []
