"""The collector's parts, each on its own (docs/architecture.md, "The collector in parts"):
the room book judges without a writer, the writer stores without rooms or acks, the ack
book acknowledges without a database or a broker, and the SQLite fast path stores every
value exactly as SQLAlchemy's own types do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, insert, text
from sqlmodel import Session

from hostile import stamp, telemetry
from roomwatch.collector.ack_book import AckBook
from roomwatch.collector.alerts import AlertDesk
from roomwatch.collector.config import CollectorConfig, RoomRegistration
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.derived import derive
from roomwatch.collector.models import EventRecord, StoredMessage, TelemetryRecord
from roomwatch.collector.observability import Counters
from roomwatch.collector.room_book import MemoryRoomBook
from roomwatch.collector.storage import Store, message_row
from roomwatch.collector.writer import Received, Writer
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.core.policy import StudentBand
from roomwatch.firmware_config import MqttSettings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SITE = "fuzz"


def message(n: int, seq: int | None = None, room: str = "r1", **fields: Any) -> wire.Message:
    body = telemetry(n, n if seq is None else seq, stamp(T0 + timedelta(seconds=n)), room)
    decoded = wire.decode(wire.topic(SITE, room, "telemetry"), json.dumps(body | fields).encode())
    assert isinstance(decoded, wire.Decoded), decoded
    return decoded.message


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


# ----------------------------------------------------------------- the room book


def book(clock: VirtualClock, published: list[tuple[str, bytes]]) -> MemoryRoomBook:
    config = CollectorConfig(mqtt=MqttSettings(port=1))
    desk = AlertDesk(lambda t, p: published.append((t, p)), clock)
    return MemoryRoomBook(config, desk, Counters())


def test_the_room_book_raises_a_locked_door_at_once_and_publishes_it() -> None:
    clock = VirtualClock(T0)
    published: list[tuple[str, bytes]] = []
    rooms = book(clock, published)
    transitions = rooms.judge(message(0), T0)  # locked, occupied
    assert [t.alert.type for t in transitions] == [wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED]
    assert [t for t, _ in published] == [wire.topic(SITE, "r1", "alerts")]
    snapshot = rooms.snapshot((SITE, "r1"))
    assert snapshot is not None and [a.type for a in snapshot.alerts] == [
        wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED
    ]
    assert rooms.rooms() == [(SITE, "r1")]
    cleared = rooms.judge(message(1, door_locked=False, lock_permit=False), T0)
    assert [t.state for t in cleared] == [wire.AlertState.RESOLVED]
    assert rooms.open_alerts() == []


def test_a_registration_overrides_the_config_and_an_empty_one_gives_way() -> None:
    rooms = book(VirtualClock(T0), [])
    key = (SITE, "r9")
    assert rooms.registration(key) == RoomRegistration()
    rooms.register(key, RoomRegistration(profile="us-mi", student_band=StudentBand.SECONDARY))
    assert rooms.is_registered(key) and rooms.registration(key).profile == "us-mi"
    snapshot = rooms.snapshot(key)  # registered before its agent was heard: still listed
    assert snapshot is not None and snapshot.profile.id == "us-mi"
    rooms.register(key, RoomRegistration())
    assert not rooms.is_registered(key)


def test_a_stalled_collector_forgives_the_silence_it_caused() -> None:
    clock = VirtualClock(T0)
    rooms = book(clock, [])
    rooms.judge(message(0, door_locked=False, occupied=False), T0)
    rooms.tick(T0)
    # Stopped for ten minutes (SIGSTOP): the agent was not silent, the collector was.
    later = T0 + timedelta(minutes=10)
    types = {t.alert.type for t in rooms.tick(later)}
    assert wire.AlertType.AGENT_OFFLINE not in types


# -------------------------------------------------------------------- the writer


def test_the_writer_tells_what_it_committed_and_a_redelivery_is_not_new(engine: Engine) -> None:
    committed: list[tuple[list[str], set[str]]] = []
    done = threading.Event()

    def on_committed(messages: Any, new_ids: set[str]) -> None:
        committed.append(([m.id for m in messages], new_ids))
        if len(committed) == 2:
            done.set()

    writer = Writer(Store(engine), Counters(), 100, on_committed=on_committed)
    writer.start()
    try:
        first = message(0)
        writer.put(Received(first, T0, []))
        assert writer.drain(10)
        writer.put(Received(first, T0, []))  # the agent replayed it
        assert writer.drain(10)
        assert done.is_set()
    finally:
        writer.stop(10)
    assert committed == [([first.id], {first.id}), ([first.id], set())]
    assert not writer.alive()


# ------------------------------------------------------------------ the ack book


class Sent:
    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None


def ack_book(published: list[tuple[str, int]], save_fails: bool = False) -> AckBook:
    saved: list[dict[tuple[str, str], int]] = []

    def save(marks: dict[tuple[str, str], int], at: datetime) -> None:
        if save_fails:
            raise OSError("disk full")
        saved.append(marks)

    def publish(topic: str, payload: bytes) -> Sent:
        published.append((topic, json.loads(payload)["seq"]))
        return Sent()

    return AckBook(VirtualClock(T0), Counters(), 60, save, publish)


def test_the_ack_never_passes_a_hole_and_holds_back_a_second_ack() -> None:
    published: list[tuple[str, int]] = []
    acks = ack_book(published)
    first = [message(0), message(1), message(3)]  # 2 is missing
    acks.committed(first, {m.id for m in first})
    assert published == [(wire.topic(SITE, "r1", "ack"), 1)]
    assert acks.mark((SITE, "r1")) == 1
    late = [message(2)]
    acks.committed(late, {late[0].id})  # within ACK_EVERY_S of the first: held back
    assert acks.pending and published[-1][1] == 1
    acks.flush(force=True)  # the writer is idle
    assert published[-1] == (wire.topic(SITE, "r1", "ack"), 3)
    assert not acks.pending


def test_an_ack_is_not_sent_when_its_mark_cannot_be_saved() -> None:
    published: list[tuple[str, int]] = []
    acks = ack_book(published, save_fails=True)
    acks.committed([message(0)], {message(0).id})
    acks.flush(force=True)
    assert published == []  # not saved: not acknowledged (the agent keeps it)
    assert acks.pending


# ------------------------------------------------- the SQLite fast path's values


def raw_rows(engine: Engine, table: Table, key: str) -> list[tuple[Any, ...]]:
    """Every column as SQLite holds it: its storage class and its bytes, the key left out."""
    names = [c.name for c in table.c if c.name != key]
    columns = ", ".join(f"typeof({n}), quote({n})" for n in names)
    with engine.connect() as connection:
        rows = connection.execute(text(f"select {columns} from {table.name} order by {key}"))
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("model", [StoredMessage, TelemetryRecord, EventRecord])
def test_the_fast_path_stores_each_value_as_sqlalchemy_does(engine: Engine, model: Any) -> None:
    """The fast path hands the driver tuples converted by each column type's own bind
    processor; Core's insert is the reference. Both rows must be byte-identical."""
    store = Store(engine)
    lost = message(0, door_closed=None, co2_ppm=415.5, episode_id=f"{SITE}.r1.0")
    event_body = {"v": 1, "id": "ev-1", "seq": 1, "ts": stamp(T0), "site": SITE, "room": "r1"}
    event_body |= {"type": "sensor_fault", "sensor": "pir", "episode_id": "é-1"}
    decoded = wire.decode(wire.topic(SITE, "r1", "event"), json.dumps(event_body).encode())
    assert isinstance(decoded, wire.Decoded)
    messages = [lost, decoded.message]
    table: Table = model.__table__
    key = "id" if model is StoredMessage else "message_id"
    rows = _rows_of(store, model, messages)
    assert rows, "nothing to compare"
    fast = [dict(r, **{key: f"fast-{r[key]}"}) for r in rows]
    with Session(engine) as session:
        store._bulk_insert(session, table, fast, ignore=False)
        session.execute(insert(table), [dict(r, **{key: f"core-{r[key]}"}) for r in rows])
        session.commit()
    stored = raw_rows(engine, table, key)
    half = len(stored) // 2
    assert stored[:half] == stored[half:]  # core-... sorts before fast-...


def _rows_of(store: Store, model: Any, messages: list[wire.Message]) -> list[dict[str, Any]]:
    received = [(m, T0) for m in messages]
    if model is StoredMessage:
        return [message_row(m, T0, None, encoded=False) for m in messages]
    d = derive(received, {m.id for m in messages})
    return d.telemetry if model is TelemetryRecord else d.events
