"""Collector storage on a real SQLite file: migrations, idempotent writes, restart."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from roomwatch.collector.storage import Store, make_engine, migrate
from roomwatch.core import rules, wire

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def event(message_id: str, seq: int) -> wire.Event:
    return wire.Event.model_validate(
        {"id": message_id, "seq": seq, "ts": T0, "site": "s", "room": "r", "type": "staff_checkin"}
    )


def store_at(path: Path) -> Store:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return Store(engine)


def test_migrations_create_the_schema_in_wal_mode_and_rerun_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "c.db"
    store_at(path).engine.dispose()
    store_at(path).engine.dispose()  # a second start: nothing to do, no error
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert {
        "message",
        "alert",
        "alert_transition",
        "dead_letter",
        "agent_progress",
        "alembic_version",
    } <= tables
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("select version_num from alembic_version").fetchone()[0] == "0002"


def test_a_message_is_stored_once_however_often_it_arrives(tmp_path: Path) -> None:
    store = store_at(tmp_path / "c.db")
    store.save_messages([(event("a", 1), T0), (event("b", 2), T0)])
    store.save_messages([(event("a", 1), T0), (event("c", 3), T0)])
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("select id, seq from message order by seq").fetchall() == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
    ]


def test_open_alerts_survive_a_restart_and_are_not_raised_twice(tmp_path: Path) -> None:
    store = store_at(tmp_path / "c.db")
    condition = rules.Condition(
        wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED, wire.Severity.CRITICAL, "locked", "e1"
    )
    (raised,) = rules.reconcile({}, "s", "r", [condition], rules.TELEMETRY_TYPES, T0)
    store.save_transitions([raised])
    store.engine.dispose()

    reopened = store_at(tmp_path / "c.db")
    (alert,) = reopened.open_alerts()
    assert alert == raised.alert
    book = {alert.key: alert}
    assert rules.reconcile(book, "s", "r", [condition], rules.TELEMETRY_TYPES, T0) == []
    (resolved,) = rules.reconcile(book, "s", "r", [], rules.TELEMETRY_TYPES, T0)
    reopened.save_transitions([resolved])
    assert reopened.open_alerts() == []
    db = sqlite3.connect(tmp_path / "c.db")
    assert [s for (s,) in db.execute("select state from alert_transition order by id")] == [
        "raised",
        "resolved",
    ]


def test_dead_letters_keep_the_payload_whole(tmp_path: Path) -> None:
    store = store_at(tmp_path / "c.db")
    payload = bytes(range(256))
    store.save_dead_letter(wire.Invalid("t/x", payload, "not JSON", None), T0)
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("select payload, reason from dead_letter").fetchone() == (payload, "not JSON")
