"""Failed sign-ins as counted in the database (table ``sign_in_throttle``).

Only the storing is here; what counts and what earns a lock is the web app's policy
(web/throttle.py), handed in as a function from one count to the next. The counts live in
the database so every web process sees them and a restart forgets nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Engine, or_, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.models import SignInThrottle
from roomwatch.collector.read.records import StoredSignInCount, stored

#: A count before and after one failure.
Step = tuple[StoredSignInCount, StoredSignInCount]


def counts(engine: Engine, keys: list[str]) -> list[StoredSignInCount]:
    """The counts stored under ``keys`` (keys never counted are left out)."""
    query = select(SignInThrottle).where(SignInThrottle.key.in_(keys))  # type: ignore[attr-defined]
    with Session(engine) as session:
        return [stored(StoredSignInCount, row) for row in session.execute(query).scalars()]


def with_locks(engine: Engine) -> list[StoredSignInCount]:
    """The counts that carry a lock (in force or past: the caller compares with now)."""
    query = select(SignInThrottle).where(SignInThrottle.locked_until.is_not(None))  # type: ignore[union-attr]
    with Session(engine) as session:
        return [stored(StoredSignInCount, row) for row in session.execute(query).scalars()]


def count_failure(
    engine: Engine,
    fresh: list[StoredSignInCount],
    step: Callable[[StoredSignInCount], StoredSignInCount],
    changes: Callable[[list[Step]], list[audit.Change]],
    now: datetime,
) -> list[Step]:
    """Move each count (``fresh``: how each starts when not yet stored) one ``step`` on, and
    append ``changes`` to the audit trail in the same transaction."""

    def work(session: Session) -> list[Step]:
        done = []
        for start in fresh:
            row = session.get(SignInThrottle, start.key)
            before = start if row is None else stored(StoredSignInCount, row)
            after = step(before)
            session.merge(SignInThrottle(**asdict(after)))
            done.append((before, after))
        return done

    return audit.in_transaction(engine, work, changes, lambda: now)


def forget(engine: Engine, key: str) -> None:
    with Session(engine) as session:
        row = session.get(SignInThrottle, key)
        if row is not None:
            session.delete(row)
            session.commit()


def forget_naming(
    engine: Engine,
    username: str | None,
    address: str | None,
    changes: Callable[[list[StoredSignInCount]], list[audit.Change]],
    now: datetime,
) -> list[StoredSignInCount]:
    """Delete every count naming ``username`` or ``address`` (what was deleted), appending
    ``changes`` to the audit trail in the same transaction."""
    clauses = []
    if username is not None:
        clauses.append(SignInThrottle.username == username)
    if address is not None:
        clauses.append(SignInThrottle.address == address)

    def work(session: Session) -> list[StoredSignInCount]:
        rows = list(session.execute(select(SignInThrottle).where(or_(*clauses))).scalars())  # type: ignore[arg-type]
        found = [stored(StoredSignInCount, row) for row in rows]
        for row in rows:
            session.delete(row)
        return found

    return audit.in_transaction(engine, work, changes, lambda: now)
