"""``roomwatch validate-config``: check a config file before a device or the collector runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import BaseModel


@click.command("validate-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--collector", "is_collector", is_flag=True, help="Check a collector config, not an agent's."
)
def validate_config(file: Path, is_collector: bool) -> None:
    """Check a configuration FILE: exit 0 if valid, 1 with each problem if not."""
    from roomwatch.firmware_config import AgentConfig, ConfigError, load_model

    model: type[BaseModel] = AgentConfig
    if is_collector:
        from roomwatch.collector.config import CollectorConfig

        model = CollectorConfig
    try:
        config = load_model(file, model)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{problem}", err=True)
        click.echo(f"{file}: invalid ({len(exc.problems)} problem(s))", err=True)
        sys.exit(1)
    digest = getattr(config, "digest", None)
    click.echo(f"{file}: valid" + (f" ({digest()})" if digest else ""))
