"""The audit trail: an append-only, hash-chained log of every change people make.

Each entry's hash covers its own fields and the previous entry's hash, so editing, inserting
or deleting a row behind the app's back breaks the chain at that row, and `verify` names
it. The head (the last hash) goes into every report export, so a trail cut short after an
export is caught too.

Entries are appended inside the caller's transaction, so a change and its audit entry are
committed together or not at all. Sequence numbers are assigned here as head + 1 under the
primary key: two writers racing for the same number cannot both commit (the loser retries),
so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from roomwatch.collector.models import AuditEntry

__all__ = [
    "GENESIS",
    "AuditEntry",
    "Break",
    "Change",
    "Verification",
    "append",
    "head",
    "head_of",
    "in_transaction",
    "record",
    "verify",
]

GENESIS = "0" * 64
#: How often a transaction that lost the race for the next sequence number is retried.
RETRIES = 8

T = TypeVar("T")

#: One process appends one entry at a time (racing processes are handled by the key).
append_lock = threading.RLock()


@dataclass(frozen=True, slots=True)
class Change:
    """What someone did: ``actor`` is a user id (or ``system``), ``subject`` what it was done to
    (``incident:EPISODE``, ``alert:ID``, ``user:ID``, ``room:SITE/ROOM``...)."""

    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def canonical_time(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str, detail: Any, prev: str
) -> str:
    body = json.dumps(
        [seq, canonical_time(at), actor, action, subject, detail, prev],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def head(session: Session) -> tuple[int, str]:
    """The last entry's sequence number and hash ((0, GENESIS) for an empty trail)."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    row = session.execute(
        select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def head_of(engine: Engine) -> str:
    """The chain head's hash, for stamping on exports."""
    with Session(engine) as session:
        return head(session)[1]


def append(session: Session, change: Change, at: datetime) -> AuditEntry:
    """Add ``change`` after the head, in the caller's transaction (which must commit)."""
    seq, prev = head(session)
    seq += 1
    # Round-trip the detail through JSON so the hash covers exactly what is stored.
    detail = json.loads(json.dumps(change.detail, default=str))
    at = at.astimezone(UTC)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=change.actor,
        action=change.action,
        subject=change.subject[:300],
        detail=detail,
        prev_hash=prev,
        hash=link_hash(seq, at, change.actor, change.action, change.subject[:300], detail, prev),
    )
    session.add(entry)
    session.flush()
    return entry


def in_transaction(
    engine: Engine,
    work: Callable[[Session], T],
    changes: Callable[[T], list[Change]],
    at: Callable[[], datetime],
) -> T:
    """Run ``work`` and append the changes it reports, in one transaction; retried when
    another writer took the next sequence number first."""
    for attempt in range(RETRIES):
        with append_lock, Session(engine, expire_on_commit=False) as session:
            result = work(session)
            for change in changes(result):
                append(session, change, at())
            try:
                session.commit()
                return result
            except (IntegrityError, OperationalError):
                session.rollback()
                if attempt == RETRIES - 1:
                    raise
    raise AssertionError("unreachable")


def record(engine: Engine, change: Change, at: datetime) -> AuditEntry:
    """Append one change on its own (for actions whose effect is stored elsewhere)."""
    return in_transaction(engine, lambda s: append(s, change, at), lambda _: [], lambda: at)


@dataclass(frozen=True, slots=True)
class Break:
    """The first place the chain does not hold, and why."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    entries: int
    head: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def entries(engine: Engine, batch: int = 5000) -> Iterator[AuditEntry]:
    """Every entry in sequence order, read in batches (the trail can be long)."""
    after = 0
    while True:
        with Session(engine) as session:
            rows = list(
                session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.seq > after)  # type: ignore[arg-type]
                    .order_by(AuditEntry.seq)  # type: ignore[arg-type]
                    .limit(batch)
                ).scalars()
            )
            for row in rows:
                session.expunge(row)
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify(engine: Engine) -> Verification:
    """Walk the chain from the start; report the first entry that was edited, inserted or
    follows a deletion."""
    expected_seq, prev, count = 1, GENESIS, 0
    for entry in entries(engine):
        count += 1
        if entry.seq != expected_seq:
            return Verification(
                count,
                prev,
                Break(
                    entry.seq,
                    f"entry {entry.seq} follows {expected_seq - 1}: "
                    f"entries {expected_seq}..{entry.seq - 1} are missing (deleted)",
                ),
            )
        if entry.prev_hash != prev:
            return Verification(
                count,
                prev,
                Break(entry.seq, f"entry {entry.seq} does not link to entry {entry.seq - 1}"),
            )
        actual = link_hash(
            entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.detail, prev
        )
        if actual != entry.hash:
            return Verification(
                count,
                prev,
                Break(entry.seq, f"entry {entry.seq} was changed after it was written"),
            )
        prev, expected_seq = entry.hash, expected_seq + 1
    return Verification(count, prev, None)
