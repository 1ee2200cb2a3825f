"""Reading back what the database holds without trusting it: a start that cannot be poisoned.

Whatever a row holds (a body that is not JSON, a time that is not a time, an alert type
this version does not know), the collector must start: a row it cannot read is
*quarantined*: logged with what it is, counted (``roomwatch_rows_quarantined_total`` in
/metrics), left in place for a person to look at, and skipped; the rest rebuilds.

So the readers here select the raw column values (no SQLAlchemy result processing, which
would raise while fetching, before any per-row handling could catch it) and convert each
row themselves.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, type_coerce

log = logging.getLogger(__name__)


class Quarantine:
    """Counts of unreadable rows, per table; shared with the collector's metrics."""

    def __init__(self, by_table: dict[str, int] | None = None) -> None:
        self.by_table: dict[str, int] = {} if by_table is None else by_table
        self._lock = threading.Lock()

    def add(self, table: str, key: object, reason: object) -> None:
        with self._lock:
            self.by_table[table] = self.by_table.get(table, 0) + 1
        text = str(reason).replace("\n", " ")[:300]
        log.error(
            "quarantined a %s row (%s): %s; it is left in the database, unused",
            table,
            str(key)[:200],
            text,
        )

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_table.values())


def raw(column: Any) -> ColumnElement[Any]:
    """``column`` as the driver hands it back: no result processor (SQLite stores JSON and
    times as text, which SQLAlchemy would parse while fetching, and could fail on)."""
    return type_coerce(column, Text).label(column.name)


def read_time(value: object) -> datetime:
    """A stored time as UTC (SQLite: ISO text, PostgreSQL: a datetime already)."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, str):
        found = datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a time: {value!r}")
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def read_json_text(value: object) -> str:
    """A stored JSON document as text (SQLite: the text itself, PostgreSQL: decoded)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return json.dumps(value)


def read_int(value: object) -> int:
    """A stored integer (SQLite's columns take any type: refuse text, floats, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value
