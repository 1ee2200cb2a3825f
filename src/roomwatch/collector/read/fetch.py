"""Running a read: rows out of a short session, copied into plain records."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Engine, Select
from sqlmodel import Session, SQLModel

from roomwatch.collector.read.records import stored

R = TypeVar("R")


def all_of(engine: Engine, query: Select[Any], cls: type[R]) -> list[R]:
    """Every row ``query`` selects (one ORM entity per row), as ``cls`` records."""
    with Session(engine) as session:
        return [stored(cls, row) for row in session.execute(query).scalars()]


def one_of(engine: Engine, model: type[SQLModel], key: object, cls: type[R]) -> R | None:
    """The ``model`` row with primary key ``key`` as a ``cls`` record, or None."""
    with Session(engine) as session:
        row = session.get(model, key)
        return None if row is None else stored(cls, row)
