"""Reading a program's config file and the command-line overrides, in the operator's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel


def load(path: Path | None, model: type[BaseModel]) -> Any:
    """The config in ``path`` (the defaults without one), or one line per problem."""
    from roomwatch.firmware_config import ConfigError, load_model

    if path is None:
        return model()
    try:
        return load_model(path, model)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def with_broker(settings: Any, url: str | None) -> Any:
    """The MQTT settings with ``--broker`` applied (unchanged without it)."""
    if url is None:
        return settings
    try:
        return settings.with_broker_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--broker") from None
