"""Incident records: validation, completeness, versioned saves, and the audit entry of each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from roomwatch.collector import audit, incidents
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.storage import Store
from roomwatch.core import wire
from roomwatch.core.incident import REQUIRED_FIELDS, IncidentRecord

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

COMPLETE = IncidentRecord(
    student_ref="S-1042",
    precipitating_factors="threw a chair in maths",
    initiated_by="A. Rivera",
    supervised_by="A. Rivera",
    removed_by="B. Chen",
    behavior_before="shouting",
    behavior_during="calmed after 4 minutes",
    behavior_after="returned to class",
    student_injury=False,
    staff_injury=False,
    parent_notified_by="B. Chen",
    parent_notified_whom="mother",
    parent_notification_method="phone",
    parent_notified_at=T0 + timedelta(hours=2),
)


@pytest.fixture
def store(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate(engine)
    store = Store(engine)
    started = wire.Episode(
        id="m1",
        ts=T0,
        site="s",
        room="r",
        seq=1,
        episode_id="ep-1",
        event=wire.EpisodeEvent.STARTED,
        started_at=T0,
        ended_at=None,
        reason="door closed",
    )
    store.write_batch([(started, T0)], [], [], [])
    yield store
    engine.dispose()


def test_an_empty_record_lists_every_required_field() -> None:
    assert IncidentRecord().missing() == list(REQUIRED_FIELDS)
    assert COMPLETE.missing() == []


def test_an_injury_needs_details() -> None:
    injured = COMPLETE.model_copy(update={"student_injury": True})
    assert injured.missing() == ["injury_details"]


@pytest.mark.parametrize("ref", ["Jane Doe", "", "x" * 41, "S 1"])
def test_a_student_is_a_reference_never_a_name(ref: str) -> None:
    with pytest.raises(ValidationError, match="student_ref"):
        IncidentRecord(student_ref=ref)


def test_a_notification_time_needs_its_zone() -> None:
    with pytest.raises(ValidationError, match="zone"):
        IncidentRecord(parent_notified_at=datetime(2026, 11, 23, 9, 0))


def test_saves_are_versioned_and_audited(store: Store) -> None:
    clock = iter(T0 + timedelta(minutes=m) for m in range(10))
    assert incidents.load(store.engine, "ep-1").version == 0
    first = incidents.save(
        store.engine, "ep-1", IncidentRecord(student_ref="S-1042"), "u1", 0, lambda: next(clock)
    )
    assert first.version == 1
    second = incidents.save(store.engine, "ep-1", COMPLETE, "u2", 1, lambda: next(clock))
    loaded = incidents.load(store.engine, "ep-1")
    assert loaded.record == COMPLETE and loaded.version == second.version == 2
    assert loaded.updated_by == "u2"

    with pytest.raises(incidents.StaleRecordError, match="someone else"):
        incidents.save(store.engine, "ep-1", IncidentRecord(), "u3", 1, lambda: next(clock))

    trail = list(audit.entries(store.engine))
    assert [(e.actor, e.action, e.subject) for e in trail] == [
        ("u1", "incident.created", "incident:ep-1"),
        ("u2", "incident.updated", "incident:ep-1"),
    ]
    assert trail[0].detail["changed"] == {"student_ref": [None, "S-1042"]}
    assert trail[1].detail["changed"]["parent_notification_method"] == [None, "phone"]
    assert "student_ref" not in trail[1].detail["changed"]
    assert audit.verify(store.engine).ok


def test_a_record_needs_an_episode(store: Store) -> None:
    with pytest.raises(incidents.UnknownEpisodeError):
        incidents.save(store.engine, "nope", COMPLETE, "u1", 0, lambda: T0)
