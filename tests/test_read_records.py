"""The read side's records copy their table's columns by name: a record whose field has no
column (a rename in models.py) fails here, not on a page in front of a user."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest
from sqlmodel import SQLModel

from roomwatch.collector import models
from roomwatch.collector.read import records

PAIRS: list[tuple[type, type[SQLModel]]] = [
    (records.StoredEpisode, models.EpisodeRecord),
    (records.StoredAlert, models.AlertRecord),
    (records.StoredAlertStep, models.AlertTransition),
    (records.StoredTelemetry, models.TelemetryRecord),
    (records.StoredEvent, models.EventRecord),
    (records.StoredRoom, models.RoomRecord),
    (records.StoredAgent, models.AgentRecord),
    (records.StoredAuditEntry, models.AuditEntry),
    (records.StoredUser, models.AppUser),
    (records.StoredToken, models.ApiToken),
    (records.StoredPushSubscription, models.PushSubscription),
    (records.StoredSignInCount, models.SignInThrottle),
]


@pytest.mark.parametrize(("record", "model"), PAIRS, ids=[r.__name__ for r, _ in PAIRS])
def test_each_field_is_a_column(record: type, model: type[SQLModel]) -> None:
    columns = set(model.__table__.columns.keys())  # type: ignore[attr-defined]
    assert {f.name for f in fields(record)} <= columns


def test_a_stored_record_is_utc_and_detached() -> None:
    row = models.EpisodeRecord(
        episode_id="ep", site="s", room="r", started_at=datetime(2026, 1, 5, 9, 0)
    )
    episode = records.stored(records.StoredEpisode, row)
    assert episode.started_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert episode.ended_at is None
    with pytest.raises(AttributeError):
        episode.site = "other"  # type: ignore[misc]


def test_every_record_is_a_frozen_dataclass() -> None:
    """A record class that lost its decorator would fail only when first read (a merge
    once dropped one)."""
    import dataclasses
    import inspect

    classes = [
        c
        for name, c in inspect.getmembers(records, inspect.isclass)
        if name.startswith("Stored") and c.__module__ == records.__name__
    ]
    assert len(classes) >= 15
    for cls in classes:
        assert dataclasses.is_dataclass(cls), cls.__name__
        assert cls.__dataclass_params__.frozen, cls.__name__  # type: ignore[attr-defined]
