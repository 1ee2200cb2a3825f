"""The hash-chained audit trail: appends in the caller's transaction, and any edit, insertion
or deletion made behind the app's back is found and named."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.database import make_engine, migrate

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _fill(engine, n: int = 5) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        audit.record(
            engine,
            audit.Change("u1", "incident.saved", f"incident:ep-{i}", {"field": i, "note": "é"}),
            T0 + timedelta(seconds=i),
        )


def test_an_untouched_chain_verifies(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    result = audit.verify(engine)
    assert result.ok and result.entries == 5
    assert result.head == audit.head_of(engine)


def test_an_empty_chain_verifies(engine) -> None:  # type: ignore[no-untyped-def]
    result = audit.verify(engine)
    assert result.ok and result.entries == 0 and result.head == audit.GENESIS


@pytest.mark.parametrize(
    ("tamper", "seq", "words"),
    [
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3", 3, "changed"),
        (
            'UPDATE audit_log SET detail = \'{"field": 99, "note": "é"}\' WHERE seq = 2',
            2,
            "changed",
        ),
        ("DELETE FROM audit_log WHERE seq = 4", 5, "missing"),
        ("UPDATE audit_log SET prev_hash = hash WHERE seq = 2", 2, "does not link"),
    ],
)
def test_tampering_is_found_at_the_first_broken_link(  # type: ignore[no-untyped-def]
    engine, tamper: str, seq: int, words: str
) -> None:
    _fill(engine)
    with engine.begin() as connection:
        connection.execute(text(tamper))
    result = audit.verify(engine)
    assert result.broken is not None
    assert result.broken.seq == seq
    assert words in result.broken.reason


def test_an_entry_inserted_in_the_middle_is_found(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    with engine.begin() as connection:
        # Make room by renumbering the tail, then insert a forged entry at 3.
        connection.execute(text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3"))
        connection.execute(text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100"))
    with Session(engine) as session:
        forged = audit.AuditEntry(
            seq=3,
            at=T0,
            actor="intruder",
            action="incident.saved",
            subject="incident:ep-x",
            detail={},
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        session.add(forged)
        session.commit()
    result = audit.verify(engine)
    assert result.broken is not None and result.broken.seq == 3


def test_a_change_and_its_entry_commit_together(engine) -> None:  # type: ignore[no-untyped-def]
    def failing_work(session: Session) -> None:
        audit.append(session, audit.Change("u1", "x", "y", {}), T0)
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        audit.in_transaction(engine, failing_work, lambda _: [], lambda: T0)
    assert audit.verify(engine).entries == 0


def test_concurrent_writers_never_fork_the_chain(engine) -> None:  # type: ignore[no-untyped-def]
    def write(worker: int) -> None:
        for i in range(10):
            audit.record(engine, audit.Change(f"u{worker}", "a", f"s{i}", {}), T0)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify(engine)
    assert result.ok and result.entries == 40
