"""Collector storage on both databases it supports: a real SQLite file and a real PostgreSQL.

Every test runs twice (``database_url`` is parametrized): on SQLite in WAL mode
and on a throwaway PostgreSQL cluster (tests/postgres.py), each test with a
fresh database. Migrations, idempotent writes, restart, binary payloads,
agent progress and time zones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, Engine, Table, inspect, make_url, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from hostile import Hostile
from roomwatch.collector import accounts, compliance_models, models
from roomwatch.collector.database import as_utc, make_engine, migrate
from roomwatch.collector.dead_letters import PREFIX_BYTES
from roomwatch.collector.derived import status_time
from roomwatch.collector.quarantine import read_time
from roomwatch.collector.recovery import Recovery
from roomwatch.collector.storage import Store
from roomwatch.core import rules, wire

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DERIVED = {"site", "room", "agent", "episode", "telemetry", "event"}
TABLES = {"message", "alert", "alert_transition", "dead_letter", "agent_progress", "app_user"}
TABLES |= {"incident_record", "audit_log", "web_session", "api_token", "push_subscription"}
TABLES |= DERIVED
COMPLIANCE = {
    str(compliance_models.EpisodeVerdictRow.__tablename__),
    str(compliance_models.ReportDeliveryRow.__tablename__),
}
TABLES |= COMPLIANCE


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


def alembic_config() -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("roomwatch.collector") / "migrations")
    )
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
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
            "room.first_seen",
            "room.last_seen",
            "agent.last_status_at",
            "agent.last_heard_at",
            "episode.started_at",
            "episode.ended_at",
            "telemetry.ts",
            "event.ts",
            "app_user.created_at",
        ):
            assert types[column] == "timestamp with time zone", column
        assert types["dead_letter.payload"] == "bytea"
        assert types["message.seq"] == types["agent_progress.acked_seq"] == "bigint"
        assert types["agent.acked_seq"] == "bigint"
        for reading in ("temperature_c", "lux", "co2_ppm"):
            assert types[f"telemetry.{reading}"] == "double precision"
        for flag in ("occupied", "door_closed", "door_locked", "staff_present", "lock_permit"):
            assert types[f"telemetry.{flag}"] == "boolean"


def test_the_migrated_schema_matches_the_models(open_store: OpenStore) -> None:
    """What Alembic built is what the code expects (for the tables revision 0004 adds)."""
    store = open_store()
    new_tables = DERIVED | {"app_user"} | COMPLIANCE

    def tables_of(diff: Any) -> set[str]:
        """The tables an autogenerate diff names (by string, or as a table's object)."""
        operation = diff[0] if isinstance(diff, list) else diff
        names: set[str] = set()
        for item in operation[1:]:
            if isinstance(item, str):
                names.add(item)
            elif isinstance(item, Table):
                names.add(item.name)
            elif isinstance(getattr(item, "table", None), Table):
                names.add(item.table.name)
        return names

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diffs if tables_of(d) & new_tables] == []


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
    alerts = Recovery(reopened.engine).open_alerts()
    assert sorted(alerts, key=lambda a: a.alert_id) == sorted(
        (t.alert for t in raised), key=lambda a: a.alert_id
    )
    book = {alert.key: alert for alert in alerts}
    assert rules.reconcile(book, "s", "r", conditions, owned, T0) == []
    resolved = rules.reconcile(book, "s", "r", [], owned, T0 + timedelta(minutes=5))
    assert {t.state for t in resolved} == {wire.AlertState.RESOLVED}
    reopened.save_transitions(resolved, by="staff-1")
    assert Recovery(reopened.engine).open_alerts() == []
    door = raised[0].alert.alert_id
    assert rows(
        reopened, "select state, by from alert_transition where alert_id = :a order by id", a=door
    ) == [
        ("raised", None),
        ("resolved", "staff-1"),
    ]


def test_dead_letters_keep_a_bounded_prefix_with_the_size_and_hash(open_store: OpenStore) -> None:
    store = open_store()
    payloads = [
        bytes(range(256)),  # NUL, invalid UTF-8, every byte value
        bytes(range(256))[::-1] * (wire.MAX_PAYLOAD_BYTES // 256),  # the largest allowed
        b"x" * (1024 * 1024),  # larger than the wire takes
        b"",
    ]
    for payload in payloads:
        store.save_dead_letter(wire.Invalid("t/x", payload, "not JSON", None), T0)
    stored = rows(
        store, "select payload, payload_size, payload_sha256, reason from dead_letter order by id"
    )
    assert [(bytes(p), n, h, r) for p, n, h, r in stored] == [
        (p[:PREFIX_BYTES], len(p), hashlib.sha256(p).hexdigest(), "not JSON") for p in payloads
    ]


def test_agent_progress_is_saved_and_loaded_after_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    assert Recovery(store.engine).load_progress() == {}
    store.save_progress({("s", "r"): 5, ("s", "r2"): 7}, T0)
    store.save_progress({("s", "r"): 2**63 - 1}, T0 + timedelta(seconds=1))  # the largest seq
    store.engine.dispose()
    assert Recovery(open_store().engine).load_progress() == {("s", "r"): 2**63 - 1, ("s", "r2"): 7}


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

    facts = Recovery(open_store().engine).recent_room_facts(since=T0)
    # In arrival order; each room's last few statuses and readings (the room view picks the
    # newest by sequence, as it does live), and the facts received since ``since``.
    assert [m.id for m, _ in facts] == [
        "tm-other-room", "st-old", "tm-old", "tm-new", "ep", "fault", "ok", "st-new",
    ]  # fmt: skip
    sent = {m.id: m for m in messages}
    for found, received_at in facts:
        assert found == sent[found.id]
        assert received_at == found.ts + delay


def test_years_1_and_9999_round_trip_through_the_database(open_store: OpenStore) -> None:
    """Issue 14, finding 1: every time the wire accepts is read back at the next start."""
    stamps = ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]
    sent = []
    for n, stamp in enumerate(stamps):
        body = {"v": 1, "id": f"ep-{n}", "seq": n, "ts": stamp, "site": "s", "room": "r"}
        body |= {"event": "started", "episode_id": f"e{n}", "started_at": stamp}
        body |= {"ended_at": None, "reason": None}
        decoded = wire.decode("roomwatch/v1/s/r/episode", json.dumps(body).encode())
        assert isinstance(decoded, wire.Decoded)
        sent.append(decoded.message)
    store = open_store()
    store.write_batch([(m, T0) for m in sent])
    store.engine.dispose()
    again = open_store()
    reads = Recovery(again.engine)
    assert [m for m, _ in reads.recent_room_facts(since=T0)] == sent
    assert reads.quarantine.total == 0
    started = rows(again, "select started_at from episode order by episode_id")
    assert [read_time(t) for (t,) in started] == [
        m.started_at for m in sent if isinstance(m, wire.Episode)
    ]


def test_whatever_the_wire_accepts_the_database_stores_and_reads_back(
    open_store: OpenStore,
) -> None:
    """Issue 14: the fuzz suite's 2,000 hostile payloads (tests/hostile.py), in one batch:
    the valid ones (years 1 and 9999, forged sequence numbers) and the dead letters are
    stored by both databases (PostgreSQL refuses NaN and NUL, which the decoder refuses
    first), and everything stored is read back at the next start."""
    hostile = Hostile(7, T0)
    received, dead = [], []
    for n in range(2000):
        payload = hostile.payload(n)
        result = wire.decode(payload.topic, payload.body)
        if isinstance(result, wire.Decoded):
            received.append((result.message, T0))
        else:
            dead.append((result, T0))
    assert received and dead
    store = open_store()
    new = store.write_batch(received, dead=dead)
    assert new == {m.id for m, _ in received}
    store.engine.dispose()
    again = open_store()
    reads = Recovery(again.engine)
    reads.recent_room_facts(since=T0 - timedelta(days=1))
    assert reads.quarantine.total == 0
    (letters,) = rows(again, "select count(*) from dead_letter")[0]
    assert letters == len(dead)


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
    (alert,) = Recovery(store.engine).open_alerts()
    (fact,) = Recovery(store.engine).recent_room_facts(since=ts - timedelta(days=1))
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


# ------------------------------------------------------------------------------------------
# Derived tables (revision 0004): sites, rooms, agents, episodes, telemetry, events, users.


def _message(model: type[wire.Message], id_: str, at: datetime, **fields: Any) -> Any:
    envelope = {"id": id_, "ts": at, "site": "s", "room": "r"}
    return model.model_validate(envelope | fields)


def status(
    id_: str, at: datetime, state: str = "online", version: str = "1.0", **more: Any
) -> wire.Status:
    fields = {"config_digest": "sha256:ab", "profile": "us-ct", "acked_seq": 7} | more
    result: wire.Status = _message(
        wire.Status, id_, at, state=state, agent_version=version, **fields
    )
    return result


def telemetry(id_: str, seq: int, at: datetime, **readings: Any) -> wire.Telemetry:
    values = {
        "temperature_c": 21.5,
        "lux": 310.0,
        "co2_ppm": None,
        "occupied": True,
        "door_closed": False,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": "s.r.e1",
    } | readings
    result: wire.Telemetry = _message(wire.Telemetry, id_, at, seq=seq, **values)
    return result


def episode(
    id_: str,
    seq: int,
    what: str,
    at: datetime,
    episode_id: str = "s.r.e1",
    started_at: datetime = T0,
    ended_at: datetime | None = None,
    reason: str | None = None,
) -> wire.Episode:
    result: wire.Episode = _message(
        wire.Episode, id_, at, seq=seq, event=wire.EpisodeEvent(what), episode_id=episode_id,
        started_at=started_at, ended_at=ended_at, reason=reason,
    )  # fmt: skip
    return result


def table_rows(store: Store, model: Any, order_by: str) -> list[dict[str, Any]]:
    """A table's rows through its column types (times as UTC, JSON decoded)."""
    table: Table = model.__table__
    with store.engine.connect() as connection:
        found = connection.execute(select(table).order_by(table.c[order_by])).mappings()
        return [
            {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
            for row in found
        ]


def derived_snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {
        "site": table_rows(store, models.SiteRecord, "id"),
        "room": table_rows(store, models.RoomRecord, "room"),
        "agent": table_rows(store, models.AgentRecord, "room"),
        "episode": table_rows(store, models.EpisodeRecord, "episode_id"),
        "telemetry": table_rows(store, models.TelemetryRecord, "message_id"),
        "event": table_rows(store, models.EventRecord, "message_id"),
    }


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def a_day_of_messages() -> list[wire.Message]:
    return [
        status("st", minutes(0)),
        telemetry("tm-1", 1, minutes(1)),
        episode("ep-start", 2, "started", minutes(1), reason="occupancy"),
        _message(
            wire.Event,
            "ev-1",
            minutes(2),
            seq=3,
            type="staff_checkin",
            by="u-7",
            episode_id="s.r.e1",
        ),
        episode("ep-check", 4, "checkpoint", minutes(15), reason="parent call due"),
        telemetry("tm-2", 5, minutes(16), occupied=None, temperature_c=None),
        episode("ep-end", 6, "ended", minutes(20), ended_at=minutes(20), reason="room empty"),
        _message(wire.Event, "ev-2", minutes(21), seq=7, type="sensor_fault", sensor="lux"),
        telemetry(
            "tm-other",
            1,
            minutes(3),
            room="r2",
            temperature_c=19.0,
            lux=0.0,
            co2_ppm=850.5,
            occupied=False,
            door_closed=True,
            door_locked=True,
            staff_present=None,
            lock_permit=True,
            episode_id=None,
        ),
    ]


def test_each_derived_table_is_written_with_the_messages(open_store: OpenStore) -> None:
    store = open_store()
    messages = a_day_of_messages()
    delay = timedelta(seconds=2)
    # A generator, as the collector's writer passes it.
    new = store.write_batch((m, m.ts + delay) for m in messages)
    assert new == {m.id for m in messages}

    got = derived_snapshot(store)
    assert got["site"] == [{"id": "s"}]
    assert got["room"] == [
        {"site": "s", "room": "r", "profile": None, "student_band": None,
         "first_seen": minutes(0), "last_seen": minutes(21)},
        {"site": "s", "room": "r2", "profile": None, "student_band": None,
         "first_seen": minutes(3), "last_seen": minutes(3)},
    ]  # fmt: skip
    assert got["agent"] == [
        {"site": "s", "room": "r", "state": "online", "agent_version": "1.0",
         "config_digest": "sha256:ab", "profile": "us-ct", "acked_seq": 7,
         "last_status_at": minutes(0), "last_heard_at": minutes(21) + delay},
        # Heard from, but no status yet: the status columns wait for one.
        {"site": "s", "room": "r2", "state": None, "agent_version": None,
         "config_digest": None, "profile": None, "acked_seq": None,
         "last_status_at": None, "last_heard_at": minutes(3) + delay},
    ]  # fmt: skip
    assert got["episode"] == [
        {"episode_id": "s.r.e1", "site": "s", "room": "r", "started_at": T0,
         "ended_at": minutes(20), "start_reason": "occupancy", "end_reason": "room empty",
         "checkpoint_count": 1},
    ]  # fmt: skip
    assert [(t["message_id"], t["room"], t["ts"], t["episode_id"]) for t in got["telemetry"]] == [
        ("tm-1", "r", minutes(1), "s.r.e1"),
        ("tm-2", "r", minutes(16), "s.r.e1"),
        ("tm-other", "r2", minutes(3), None),
    ]
    assert got["event"] == [
        {"message_id": "ev-1", "site": "s", "room": "r", "ts": minutes(2),
         "type": "staff_checkin", "episode_id": "s.r.e1",
         "fields": {"by": "u-7", "episode_id": "s.r.e1"}},
        {"message_id": "ev-2", "site": "s", "room": "r", "ts": minutes(21),
         "type": "sensor_fault", "episode_id": None, "fields": {"sensor": "lux"}},
    ]  # fmt: skip


def test_a_message_stored_before_changes_no_derived_row(open_store: OpenStore) -> None:
    store = open_store()
    messages = a_day_of_messages()
    store.write_batch([(m, m.ts) for m in messages])
    before = derived_snapshot(store)

    # Everything again, later (as after a lost ack), and one id twice in a batch.
    later = timedelta(hours=1)
    assert store.write_batch([(m, m.ts + later) for m in [*messages, messages[4]]]) == set()
    assert derived_snapshot(store) == before

    # Same id, different body (a replayed id is trusted to be the same message): ignored too.
    again = episode("ep-check", 4, "checkpoint", minutes(30), reason="another")
    assert store.write_batch([(again, minutes(30))]) == set()
    assert derived_snapshot(store) == before


def test_an_id_twice_in_one_new_batch_is_derived_once(open_store: OpenStore) -> None:
    store = open_store()
    check = episode("ep-check", 4, "checkpoint", minutes(15))
    tm = telemetry("tm-1", 1, minutes(1))
    assert store.write_batch([(check, T0), (tm, T0), (check, T0), (tm, T0)]) == {
        "ep-check",
        "tm-1",
    }
    snapshot = derived_snapshot(store)
    assert [e["checkpoint_count"] for e in snapshot["episode"]] == [1]
    assert [t["message_id"] for t in snapshot["telemetry"]] == ["tm-1"]


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one-batch"])
def test_an_episode_end_that_arrives_before_its_start(
    open_store: OpenStore, together: bool
) -> None:
    store = open_store()
    started = minutes(-30)
    end = episode(
        "end", 9, "ended", minutes(0), started_at=started, ended_at=minutes(0), reason="staff"
    )
    check = episode("check", 8, "checkpoint", minutes(-15), started_at=started)
    start = episode("start", 7, "started", minutes(-30), started_at=started, reason="button")
    batches = [[end, check, start]] if together else [[end], [check], [start]]

    expected_after_end = {
        "episode_id": "s.r.e1", "site": "s", "room": "r", "started_at": started,
        "ended_at": minutes(0), "start_reason": None, "end_reason": "staff",
        "checkpoint_count": 0,
    }  # fmt: skip
    for batch in batches:
        store.write_batch([(m, minutes(1)) for m in batch])
        if batch == [end]:
            # An end without a start: the row, with the start the end message carries.
            assert table_rows(store, models.EpisodeRecord, "episode_id") == [expected_after_end]

    # The late start fills in what only it knows and does not reopen the episode.
    assert table_rows(store, models.EpisodeRecord, "episode_id") == [
        expected_after_end | {"start_reason": "button", "checkpoint_count": 1}
    ]
    # A second end (staff, then the agent's debounce) keeps the first end.
    again = episode("end-2", 10, "ended", minutes(5), started_at=started, ended_at=minutes(5))
    store.write_batch([(again, minutes(5))])
    (row,) = table_rows(store, models.EpisodeRecord, "episode_id")
    assert (row["ended_at"], row["end_reason"]) == (minutes(0), "staff")


def test_an_older_status_arriving_later_does_not_replace_a_newer_one(
    open_store: OpenStore,
) -> None:
    store = open_store()
    newer = status("st-new", minutes(10), version="2.0", acked_seq=40)
    older = status("st-old", minutes(5), version="1.0", acked_seq=30)
    store.write_batch([(newer, minutes(10))])
    store.write_batch([(older, minutes(20)), (telemetry("tm", 41, minutes(19)), minutes(19))])
    (agent,) = table_rows(store, models.AgentRecord, "room")
    assert (agent["agent_version"], agent["acked_seq"], agent["last_status_at"]) == (
        "2.0",
        40,
        minutes(10),
    )
    assert agent["last_heard_at"] == minutes(20)  # the late arrival still was heard

    # The same two, reversed and in one batch, on another room: the same result.
    store.write_batch(
        [
            (status("st-new-2", minutes(10), version="2.0", room="r2"), minutes(10)),
            (status("st-old-2", minutes(5), version="1.0", room="r2"), minutes(20)),
        ]
    )
    agents = {a["room"]: a for a in table_rows(store, models.AgentRecord, "room")}
    assert agents["r2"]["agent_version"] == "2.0"


def test_a_last_will_counts_from_when_it_arrived(open_store: OpenStore) -> None:
    """The will is composed at connect time (its ts) and published when the agent vanishes:
    against the online status of the same connection it must still win."""
    store = open_store()
    connected = minutes(0)
    will = status("will", connected, state="offline")  # composed first
    online = status("online", connected + timedelta(milliseconds=40))
    store.write_batch([(online, connected + timedelta(milliseconds=50))])
    gone = minutes(47)  # the broker noticed the silence
    store.write_batch([(will, gone)])
    (agent,) = table_rows(store, models.AgentRecord, "room")
    assert (agent["state"], agent["last_status_at"]) == ("offline", gone)
    assert status_time(will, gone) == gone

    # Reconnected: a new will, then online, both newer.
    store.write_batch([(status("online-2", minutes(50)), minutes(50))])
    (agent,) = table_rows(store, models.AgentRecord, "room")
    assert (agent["state"], agent["last_status_at"]) == ("online", minutes(50))

    # A tie between online and offline goes to offline, whichever came first.
    store.write_batch([(status("off-tie", minutes(50), state="offline"), minutes(50))])
    store.write_batch([(status("on-tie", minutes(50)), minutes(50))])
    (agent,) = table_rows(store, models.AgentRecord, "room")
    assert agent["state"] == "offline"


def test_telemetry_values_come_back_typed(open_store: OpenStore) -> None:
    store = open_store()
    ts = datetime(2026, 3, 29, 1, 30, 15, 125000, tzinfo=UTC)
    sent = [
        telemetry("full", 1, ts, temperature_c=-12.375, lux=123456.75, co2_ppm=39999.5,
                  occupied=False, door_closed=True, door_locked=True, staff_present=False,
                  lock_permit=True, episode_id=None),
        telemetry("unknowns", 2, ts + timedelta(milliseconds=1), temperature_c=None, lux=None,
                  co2_ppm=None, occupied=None, door_closed=None, door_locked=None,
                  staff_present=None, lock_permit=False, episode_id="s.r.2026-03-29T01:30"),
        telemetry("ints", 3, ts + timedelta(milliseconds=2), temperature_c=21, lux=0,
                  co2_ppm=0),
    ]  # fmt: skip
    store.write_batch([(m, ts) for m in sent])
    got = table_rows(store, models.TelemetryRecord, "ts")
    # vacated_at is the agent's pending-end hint for the live rules, not a reading: it is kept
    # in the stored message (the restart rebuild reads it there), not in the readings table.
    envelope = ("v", "id", "seq", "vacated_at")
    columns = [c for c in wire.Telemetry.model_fields if c not in envelope]
    assert got == [{"message_id": m.id} | {c: getattr(m, c) for c in columns} for m in sent]
    for row in got:
        assert row["ts"].utcoffset() == timedelta(0)
        for flag in ("occupied", "door_closed", "door_locked", "staff_present", "lock_permit"):
            assert row[flag] is None or type(row[flag]) is bool, flag
        for reading in ("temperature_c", "lux", "co2_ppm"):
            assert row[reading] is None or type(row[reading]) is float, reading


def test_a_failed_batch_leaves_neither_messages_nor_derived_rows(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store()
    messages = a_day_of_messages()

    def broken(*_args: Any) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "_derived", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            store.write_batch([(m, m.ts) for m in messages])
    assert rows(store, "select count(*) from message") == [(0,)]
    # The retry, as the collector's writer does it: everything, once.
    assert store.write_batch([(m, m.ts) for m in messages]) == {m.id for m in messages}
    assert len(derived_snapshot(store)["telemetry"]) == 3


def test_upgrading_a_database_that_has_messages(database_url: str) -> None:
    """0003 -> 0004 keeps the messages; the new tables start empty and fill from new ones."""
    engine = make_engine(database_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
        old = [
            episode("old-start", 1, "started", minutes(0), reason="occupancy"),
            telemetry("old-tm", 2, minutes(1)),
        ]
        message_table: Table = models.StoredMessage.__table__  # type: ignore[attr-defined]
        with engine.begin() as connection:
            connection.execute(
                message_table.insert(),
                [
                    {
                        "id": m.id,
                        "site": m.site,
                        "room": m.room,
                        "kind": m.kind.value,
                        "seq": m.seq,
                        "ts": m.ts,
                        "received_at": m.ts,
                        "body": m.model_dump(mode="json"),
                    }
                    for m in old
                ],
            )

        migrate(engine)
        store = Store(engine)
        assert rows(store, "select version_num from alembic_version") == [(head_revision(),)]
        assert rows(store, "select id from message order by id") == [("old-start",), ("old-tm",)]
        assert all(found == [] for found in derived_snapshot(store).values())

        # The episode that was open across the upgrade ends: its row appears, whole.
        end = episode("new-end", 3, "ended", minutes(9), ended_at=minutes(9), reason="empty")
        assert store.write_batch([(old[1], minutes(1)), (end, minutes(9))]) == {"new-end"}
        snapshot = derived_snapshot(store)
        assert [(e["started_at"], e["ended_at"]) for e in snapshot["episode"]] == [(T0, minutes(9))]
        assert snapshot["telemetry"] == []  # old-tm was stored before: not derived
        assert [r["room"] for r in snapshot["room"]] == ["r"]
    finally:
        engine.dispose()


def test_users_are_made_and_found_after_a_restart(open_store: OpenStore) -> None:
    """On both databases, through the one user-creation path (collector/accounts.py)."""
    store = open_store()
    created = datetime(2026, 9, 1, 7, 30, tzinfo=UTC)
    admin = accounts.create_user(
        store.engine, "jdoe", "Jane Doe", "admin", "a long passphrase", "test", created
    )
    assert (admin.username, admin.role, admin.disabled) == ("jdoe", "admin", False)
    assert admin.created_at == created

    store.engine.dispose()
    reopened = open_store()
    found = accounts.user_named(reopened.engine, "jdoe")
    assert found == admin
    assert found is not None and found.created_at.utcoffset() == timedelta(0)
    assert accounts.user_named(reopened.engine, "nobody") is None

    with pytest.raises(accounts.UserExistsError):
        accounts.create_user(
            reopened.engine, "jdoe", "Another Jane", "staff", "a long passphrase", "test", created
        )
    with pytest.raises(ValueError, match="role"):
        accounts.create_user(
            reopened.engine, "boss", "Boss", "superuser", "a long passphrase", "test", created
        )
    # The database itself refuses a role outside the three.
    with pytest.raises(IntegrityError, match=r"ck_app_user_role|CHECK"):
        rows(
            reopened,
            "insert into app_user (id, username, display_name, role, created_at, disabled)"
            " values ('x', 'x', 'x', 'root', :at, false)",
            at=created,
        )
