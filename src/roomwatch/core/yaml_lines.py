"""Parse YAML and remember the line of every key, so validation errors can say where.

Pure: it takes text, not a path. Used by the policy profiles and by every
configuration file, so all of them report errors as ``key.path (line N): message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

Path = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """The text is not YAML (or not a mapping at the top)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class LinedDocument:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if not isinstance(key, str | int):
                raise YamlSyntaxError(
                    f"keys must be text, got {key!r}", key_node.start_mark.line + 1
                )
            if key in result:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = _walk(value_node, child, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def parse(text: str) -> LinedDocument:
    """Parse one YAML document (a mapping) keeping each key's line number."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlSyntaxError(f"not valid YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"not valid YAML: {exc}", None) from None
    if root is None:
        return LinedDocument({}, {(): 1})
    lines: dict[Path, int] = {}
    data = _walk(root, (), lines)
    if not isinstance(data, dict):
        raise YamlSyntaxError("the top level must be a mapping of keys to values", 1)
    return LinedDocument(data, lines)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where, and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path or "(top level)"
        return (
            f"{where} (line {self.line}): {self.message}"
            if self.line
            else f"{where}: {self.message}"
        )


def problems(error: ValidationError, doc: LinedDocument) -> list[Problem]:
    """Turn pydantic's errors into :class:`Problem` s with key paths and lines."""
    found = []
    for item in error.errors(include_url=False):
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the schema docs)"
        found.append(Problem(".".join(str(p) for p in loc), doc.line_of(loc), message))
    return sorted(found, key=lambda p: (p.line or 0, p.path))
