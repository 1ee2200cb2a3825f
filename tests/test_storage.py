"""Collector storage on both databases it supports: a real SQLite file and a real PostgreSQL.

Every test runs twice (``database_url`` is parametrized): on SQLite in WAL mode
and on a throwaway PostgreSQL cluster (tests/postgres.py), each test with a
fresh database. Migrations, idempotent writes, restart, binary payloads,
agent progress and time zones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, Engine, inspect, make_url, text

from roomwatch.collector.storage import Store, as_utc, make_engine, migrate
from roomwatch.core import rules, wire

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TABLES = {"message", "alert", "alert_transition", "dead_letter", "agent_progress"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file (in a folder still to be made) or a PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'deep' / 'c.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


OpenStore = Callable[[], Store]


@pytest.fixture
def open_store(database_url: str) -> Iterator[OpenStore]:
    """Starts the storage as the collector does (engine, migrations); each call is a restart."""
    engines: list[Engine] = []

    def start() -> Store:
        engine = make_engine(database_url)
        engines.append(engine)
        migrate(engine)
        return Store(engine)

    yield start
    for engine in engines:
        engine.dispose()


def rows(store: Store, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql), params)]


def head_revision() -> str:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("roomwatch.collector") / "migrations")
    )
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def event(message_id: str, seq: int, ts: datetime = T0, type_: str = "staff_checkin") -> wire.Event:
    return wire.Event.model_validate(
        {"id": message_id, "seq": seq, "ts": ts, "site": "s", "room": "r", "type": type_}
    )


def test_migrations_create_the_schema_and_rerun_cleanly(
    open_store: OpenStore, database_url: str
) -> None:
    open_store().engine.dispose()
    store = open_store()  # a second start: nothing to do, no error
    assert TABLES | {"alembic_version"} <= set(inspect(store.engine).get_table_names())
    assert rows(store, "select version_num from alembic_version") == [(head_revision(),)]
    if store.engine.dialect.name == "sqlite":
        path = make_url(database_url).database
        assert path is not None
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    else:
        assert store.engine.dialect.name == "postgresql"
        types = dict(
            (f"{table}.{column}", type_)
            for table, column, type_ in rows(
                store,
                "select table_name, column_name, data_type from information_schema.columns"
                " where table_schema = current_schema()",
            )
        )
        for column in (
            "message.ts",
            "message.received_at",
            "alert.raised_at",
            "alert.updated_at",
            "alert_transition.at",
            "dead_letter.received_at",
            "agent_progress.updated_at",
        ):
            assert types[column] == "timestamp with time zone", column
        assert types["dead_letter.payload"] == "bytea"
        assert types["message.seq"] == types["agent_progress.acked_seq"] == "bigint"


def test_a_message_is_stored_once_however_often_it_arrives(open_store: OpenStore) -> None:
    store = open_store()
    assert store.write_batch([(event("a", 1), T0), (event("b", 2), T0)]) == {"a", "b"}
    assert store.write_batch([(event("a", 1), T0), (event("c", 3), T0)]) == {"c"}
    assert store.save_messages([(event("b", 2), T0)]) == set()
    assert rows(store, "select id, seq from message order by seq") == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
    ]


def test_an_id_repeated_within_one_batch_is_stored_once(open_store: OpenStore) -> None:
    store = open_store()
    batch = [(event("a", 1), T0), (event("b", 2), T0), (event("a", 1), T0)]
    assert store.write_batch(batch) == {"a", "b"}
    assert store.write_batch(batch) == set()  # the whole batch again, as after a lost ack
    assert rows(store, "select id, seq from message order by seq") == [("a", 1), ("b", 2)]


def test_open_alerts_survive_a_restart_and_are_not_raised_twice(open_store: OpenStore) -> None:
    store = open_store()
    owned = frozenset({wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED, wire.AlertType.SENSOR_FAULT})
    conditions = [
        rules.Condition(
            wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED, wire.Severity.CRITICAL, "locked", "e1"
        ),
        rules.Condition(
            wire.AlertType.SENSOR_FAULT, wire.Severity.WARNING, "no lux", "e1", subject="lux"
        ),
    ]
    raised = rules.reconcile({}, "s", "r", conditions, owned, T0)
    assert len(raised) == 2
    store.save_transitions(raised)
    store.engine.dispose()

    reopened = open_store()
    alerts = reopened.open_alerts()
    assert sorted(alerts, key=lambda a: a.alert_id) == sorted(
        (t.alert for t in raised), key=lambda a: a.alert_id
    )
    book = {alert.key: alert for alert in alerts}
    assert rules.reconcile(book, "s", "r", conditions, owned, T0) == []
    resolved = rules.reconcile(book, "s", "r", [], owned, T0 + timedelta(minutes=5))
    assert {t.state for t in resolved} == {wire.AlertState.RESOLVED}
    reopened.save_transitions(resolved, by="staff-1")
    assert reopened.open_alerts() == []
    door = raised[0].alert.alert_id
    assert rows(
        reopened, "select state, by from alert_transition where alert_id = :a order by id", a=door
    ) == [
        ("raised", None),
        ("resolved", "staff-1"),
    ]


def test_dead_letters_keep_the_payload_whole(open_store: OpenStore) -> None:
    store = open_store()
    payloads = [
        bytes(range(256)),  # NUL, invalid UTF-8, every byte value
        bytes(range(256))[::-1] * (wire.MAX_PAYLOAD_BYTES // 256),  # the largest allowed
        b"",
    ]
    for payload in payloads:
        store.save_dead_letter(wire.Invalid("t/x", payload, "not JSON", None), T0)
    stored = rows(store, "select payload, reason from dead_letter order by id")
    assert [(bytes(p), r) for p, r in stored] == [(p, "not JSON") for p in payloads]


def test_agent_progress_is_saved_and_loaded_after_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    assert store.load_progress() == {}
    store.save_progress({("s", "r"): 5, ("s", "r2"): 7}, T0)
    store.save_progress({("s", "r"): 2**63 - 1}, T0 + timedelta(seconds=1))  # the largest seq
    store.engine.dispose()
    assert open_store().load_progress() == {("s", "r"): 2**63 - 1, ("s", "r2"): 7}


def test_a_restart_finds_each_rooms_last_state_and_its_recent_facts(
    open_store: OpenStore,
) -> None:
    def message(model: type[wire.Message], id_: str, minutes: int, **fields: Any) -> wire.Message:
        envelope = {"id": id_, "ts": T0 + timedelta(minutes=minutes), "site": "s", "room": "r"}
        return model.model_validate(envelope | fields)

    def status(id_: str, minutes: int, state: str) -> wire.Message:
        return message(
            wire.Status,
            id_,
            minutes,
            state=state,
            agent_version="1",
            config_digest="d",
            profile="p",
        )

    def telemetry(id_: str, seq: int, minutes: int, room: str = "r") -> wire.Message:
        readings = {"temperature_c": 21.5, "lux": None, "co2_ppm": None, "occupied": True}
        doors = {"door_closed": True, "door_locked": False, "staff_present": True}
        return message(
            wire.Telemetry, id_, minutes, room=room, seq=seq, lock_permit=False, episode_id=None,
            **readings, **doors,
        )  # fmt: skip

    def episode(id_: str, seq: int, minutes: int) -> wire.Message:
        return message(
            wire.Episode, id_, minutes, seq=seq, event=wire.EpisodeEvent.STARTED, episode_id="e1",
            started_at=T0 + timedelta(minutes=minutes), ended_at=None, reason="escalation",
        )  # fmt: skip

    def event_of(type_: str, id_: str, seq: int, minutes: int) -> wire.Message:
        return message(wire.Event, id_, minutes, seq=seq, type=type_, sensor="lux")

    messages = [
        status("st-old", -60, "online"),
        status("st-new", 10, "offline"),
        telemetry("tm-old", 1, 1),
        telemetry("tm-new", 2, 2),
        telemetry("tm-other-room", 1, -3000, room="r2"),  # a room's last: however old
        episode("ep-before", 3, -3000),  # before ``since``
        episode("ep", 4, 3),
        event_of("sensor_fault", "fault-before", 5, -1),  # before ``since``
        event_of("sensor_fault", "fault", 6, 4),
        event_of("staff_checkin", "checkin", 7, 5),  # not a fact the views rebuild from
        event_of("sensor_ok", "ok", 8, 6),
    ]
    delay = timedelta(seconds=2)
    store = open_store()
    store.write_batch([(m, m.ts + delay) for m in messages])
    store.engine.dispose()

    facts = open_store().recent_room_facts(since=T0)
    assert [m.id for m, _ in facts] == ["tm-other-room", "tm-new", "ep", "fault", "ok", "st-new"]
    sent = {m.id: m for m in messages}
    for found, received_at in facts:
        assert found == sent[found.id]
        assert received_at == found.ts + delay


def test_stored_times_come_back_as_the_same_instant_in_utc(open_store: OpenStore) -> None:
    """The PostgreSQL test server runs in a non-UTC zone (postgres.SERVER_TIMEZONE), as a
    server set up in a school's own time zone would."""
    store = open_store()
    ts = datetime(2026, 3, 29, 1, 30, 15, 125000, tzinfo=UTC)  # during a DST change in Europe
    received = ts + timedelta(milliseconds=250)
    condition = rules.Condition(
        wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED, wire.Severity.CRITICAL, "locked", "e1"
    )
    store.write_batch(
        [(event("a", 1, ts, "sensor_fault"), received)],
        rules.reconcile({}, "s", "r", [condition], rules.TELEMETRY_TYPES, ts),
    )
    utc = DateTime(timezone=True)  # the columns' type: SQLite's text comes back as datetime
    query = text("select ts, received_at from message").columns(ts=utc, received_at=utc)
    with store.engine.connect() as connection:
        ((stored_ts, stored_received),) = connection.execute(query).all()
    assert as_utc(stored_ts) == ts  # the same instant (SQLite hands back naive UTC)
    assert as_utc(stored_received) == received

    # What Store hands back to the collector: the same instants, and in UTC.
    (alert,) = store.open_alerts()
    (fact,) = store.recent_room_facts(since=ts - timedelta(days=1))
    handed_back = {
        "open_alerts()[0].raised_at": (alert.raised_at, ts),
        "recent_room_facts()[0] received_at": (fact[1], received),
        "recent_room_facts()[0] message ts": (fact[0].ts, ts),
    }
    assert {name: v for name, (v, _) in handed_back.items()} == {
        name: expected for name, (_, expected) in handed_back.items()
    }
    not_utc = {
        name: value.isoformat()
        for name, (value, _) in handed_back.items()
        if value.utcoffset() != timedelta(0)
    }
    assert not not_utc, (
        f"BUG (storage.as_utc on {store.engine.dialect.name}): Store returns times in the "
        f"database session's time zone, not UTC: {not_utc}. as_utc() only labels naive "
        "values as UTC and passes aware ones through unchanged; it should convert them "
        "(value.astimezone(UTC))."
    )
