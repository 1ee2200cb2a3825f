"""Read a YAML configuration file into a strict model; errors name the key path and the line."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from roomwatch.core import yaml_lines

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used; ``problems`` lists each fault."""

    def __init__(self, source: str, problems: list[yaml_lines.Problem]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{listed}")


def parse_model(text: str, model: type[M], source: str = "<config>") -> M:
    """Validate YAML ``text`` against ``model``."""
    try:
        doc = yaml_lines.parse(text)
    except yaml_lines.YamlSyntaxError as exc:
        raise ConfigError(source, [yaml_lines.Problem("", exc.line, str(exc))]) from None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(source, yaml_lines.problems(exc, doc)) from None


def load_model(path: Path, model: type[M]) -> M:
    """Read and validate the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [yaml_lines.Problem("", None, f"cannot read the file: {exc}")]
        ) from None
    return parse_model(text, model, str(path))
