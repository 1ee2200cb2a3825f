"""The database itself: engine set-up (SQLite in WAL mode, or PostgreSQL) and migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError


def as_utc(value: datetime) -> datetime:
    """Every time we store is UTC: SQLite hands it back naive, PostgreSQL in the session's
    zone; either way, return it as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DatabaseUrlError(ValueError):
    """A database URL that cannot be used as it is (the message says what to do)."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    DatabaseUrlError, in one line, for a URL whose driver is not installed or that names
    no database SQLAlchemy knows."""
    try:
        return _make_engine(url)
    except ModuleNotFoundError as exc:
        hint = ""
        if url.startswith("postgresql"):
            hint = (
                ": for PostgreSQL install roomwatch[postgres] (the psycopg driver) in the same "
                "environment and write the URL as postgresql+psycopg://USER@HOST/DB"
            )
        raise DatabaseUrlError(
            f"the database URL {_safe(url)} needs the Python module {exc.name!r}, which is "
            f"not installed{hint}"
        ) from None
    except (NoSuchModuleError, ArgumentError) as exc:
        raise DatabaseUrlError(
            f"the database URL {_safe(url)} cannot be used ({exc}): write sqlite:///PATH "
            "or postgresql+psycopg://USER@HOST/DB"
        ) from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable)"


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: an ack follows each commit, and the agent then forgets; a power cut must
            # not take back a commit we acknowledged.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # The session's zone decides how timestamptz comes back: make it UTC, whatever the server's.
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (Alembic, from the first schema on)."""
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("roomwatch.collector") / "migrations")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
