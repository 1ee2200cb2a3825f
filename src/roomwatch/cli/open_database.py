"""The collector's database for the commands that read or change it offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from roomwatch.cli.configs import load


def engine_on(url: str, must_exist: bool = False) -> Any:
    """An engine on ``url``, or one line saying why not (driver missing, bad URL, and with
    ``must_exist`` a SQLite file that is not there: reading an empty database it had just
    created would answer "nothing found", which is false reassurance)."""
    from sqlalchemy.engine import make_url

    from roomwatch.collector.database import DatabaseUrlError, make_engine

    try:
        engine = make_engine(url) if not must_exist else None
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None
    if engine is not None:
        return engine
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - make_engine names a bad URL in its own words
        parsed = None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).expanduser().is_file():
            raise click.ClickException(
                f"there is no database at {path or '(memory)'}: give the collector's database "
                "with --db sqlite:///PATH or database_url in --config (the collector creates "
                "it when it first runs)"
            )
    return engine_on(url)


def open_existing(config_file: Path | None, database_url: str | None) -> tuple[Any, Any]:
    """The collector config and an engine on its existing database (migrated)."""
    from sqlalchemy.exc import OperationalError

    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate

    config = load(config_file, CollectorConfig)
    if database_url is not None:
        config = config.model_copy(update={"database_url": database_url})
    engine = engine_on(config.database_url, must_exist=True)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise click.ClickException(
            f"cannot open the database: {str(exc.orig or exc).strip().splitlines()[0]}"
        ) from None
    return config, engine
