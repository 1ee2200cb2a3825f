"""What lint-imports cannot say: the web app imports no private name of the collector.

A ``_name`` is a module's own business; a page that borrows one breaks when the collector
tidies up, with no contract to warn. (The ORM models are kept out by an import-linter
contract in pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

import roomwatch.web

WEB = Path(roomwatch.web.__file__).parent


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


def test_the_web_app_imports_no_private_name_of_the_collector() -> None:
    files = sorted(WEB.rglob("*.py"))
    assert files
    found = {
        str(path.relative_to(WEB)): names
        for path in files
        if (names := private_imports(path.read_text()))
    }
    assert found == {}
