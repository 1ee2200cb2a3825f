"""The read side hands out plain, UTC, frozen records (never an ORM row a page could lazily
load from after its session closed), and an episode's timeline tells its story in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from roomwatch.collector import accounts, audit
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.models import (
    AgentRecord,
    AlertRecord,
    AlertTransition,
    EpisodeRecord,
    EventRecord,
    RoomRecord,
    SiteRecord,
    TelemetryRecord,
)
from roomwatch.collector.read import alerts, audit_log, episodes, people, rooms

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    found = make_engine(f"sqlite:///{tmp_path / 'read.db'}")
    migrate(found)
    ada = accounts.create_user(found, "ada", "Ada L", "staff", "a-long-password", "cli", T0)
    with Session(found) as session:
        session.add(SiteRecord(id="s"))
        session.flush()  # no ORM relationships: the foreign keys need this order
        session.add(RoomRecord(site="s", room="r1", first_seen=T0, last_seen=_at(9)))
        session.add(RoomRecord(site="s", room="r2", first_seen=T0, last_seen=_at(9)))
        session.flush()
        session.add(AgentRecord(site="s", room="r1", state="online", last_heard_at=_at(9)))
        session.add(
            EpisodeRecord(
                episode_id="ep", site="s", room="r1", started_at=_at(0), ended_at=_at(8),
                start_reason="door", end_reason="empty", checkpoint_count=0,
            )
        )  # fmt: skip
        for n, (closed, staff) in enumerate([(True, True), (True, False), (False, False)]):
            session.add(
                TelemetryRecord(
                    message_id=f"t{n}", site="s", room="r1", ts=_at(1 + 2 * n), lux=300.0,
                    temperature_c=21.0, door_closed=closed, staff_present=staff,
                    lock_permit=False, episode_id="ep",
                )
            )  # fmt: skip
        session.add(
            EventRecord(
                message_id="e1", site="s", room="r1", ts=_at(2), type="checkpoint",
                episode_id="ep", fields={"episode_id": "ep", "note": "calm"},
            )
        )  # fmt: skip
        session.add(
            AlertRecord(
                alert_id="a1", site="s", room="r1", type="staff_absent", severity="critical",
                state="acknowledged", episode_id="ep", raised_at=_at(4), updated_at=_at(5),
                message="no staff", acknowledged_by=ada.id,
            )
        )  # fmt: skip
        session.flush()
        session.add(AlertTransition(alert_id="a1", state="raised", at=_at(4)))
        session.add(AlertTransition(alert_id="a1", state="acknowledged", at=_at(5), by=ada.id))
        session.commit()
    audit.record(found, audit.Change(ada.id, "incident.saved", "incident:ep", {}), _at(7))
    yield found
    found.dispose()


def _plain(record: object) -> None:
    assert not isinstance(record, SQLModel)
    for value in getattr(type(record), "__slots__", ()):
        at = getattr(record, value)
        if isinstance(at, datetime):
            assert at.tzinfo is UTC


def test_every_read_hands_out_plain_utc_records(engine: Engine) -> None:
    found: list[object] = [
        *alerts.alerts(engine),
        alerts.alert(engine, "a1"),
        *alerts.alert_steps(engine, ["a1"]),
        *episodes.episodes(engine),
        episodes.episode(engine, "ep"),
        *audit_log.audit_entries(engine),
        *people.users(engine),
        *(item for pair in rooms.rooms(engine) for item in pair if item is not None),
    ]
    assert len(found) == 12
    for record in found:
        _plain(record)
    assert [(r.room, a is not None) for r, a in rooms.rooms(engine)] == [
        ("r1", True),
        ("r2", False),
    ]
    assert alerts.alert(engine, "none") is None and episodes.episode(engine, "none") is None


def test_the_timeline_tells_the_episode_in_order(engine: Engine) -> None:
    ep = episodes.episode(engine, "ep")
    assert ep is not None
    told = [(i.at, i.kind, i.text) for i in episodes.timeline(engine, ep)]
    assert told == [
        (_at(0), "episode", "episode started (door)"),
        (_at(1), "door", "door closed"),
        (_at(1), "staff", "staff at the observation point"),
        (_at(2), "event", "checkpoint: note=calm"),
        (_at(3), "staff", "staff away"),
        (_at(4), "alert", "staff absent raised: no staff"),
        (_at(5), "door", "door opened"),
        (_at(5), "alert", "staff absent acknowledged by Ada L: no staff"),
        (_at(7), "record", "incident record saved by Ada L"),
        (_at(8), "episode", "episode ended (empty)"),
    ]
    assert [(s.at, s.lux) for s in episodes.series(engine, "ep")] == [
        (_at(1), 300.0),
        (_at(3), 300.0),
        (_at(5), 300.0),
    ]
