"""Issue 14, findings 1 and 2: time the collector can trust, and a start nothing stored can
poison. Messages go straight into the collector's handler on the virtual clock (as in
test_collector_rules.py); restarts are real, on the same SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from roomwatch.core import wire
from test_collector_rules import ROOM, SITE, Desk

LOCKED_INSIDE = {"door_locked": True, "occupied": True}
UNLOCKED_EMPTY = {"door_locked": False, "occupied": False}
CRITICAL = "door_locked_while_occupied"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.close()


def restart(desk: Desk, folder: Path) -> Desk:
    """Stop ``desk`` once everything it received is stored; a new collector on its database,
    its clock where the old one's was, its agent's numbering where it was."""
    assert wait_until(lambda: desk.collector.counters.stored >= desk.seq - 1, timeout=10)
    desk.close()
    again = Desk(folder)
    again.clock.advance((desk.clock.now() - again.clock.now()).total_seconds())
    again.seq = desk.seq
    return again


def forged_telemetry(desk: Desk, ts: str, seq: int | None = None, **fields: Any) -> None:
    body = {
        "v": 1,
        "id": f"forged-{desk.seq}",
        "seq": desk.seq if seq is None else seq,
        "ts": ts,
        "site": SITE,
        "room": ROOM,
        "temperature_c": 21.0,
        "lux": 300.0,
        "co2_ppm": None,
        "staff_present": True,
        "door_closed": True,
        "lock_permit": False,
        "episode_id": None,
        **fields,
    }
    desk.seq += 1
    desk.collector.on_message(wire.topic(SITE, ROOM, "telemetry"), json.dumps(body).encode())


# ------------------------------------------------------------- finding 1: years 1 and 9999


def test_an_episode_from_year_one_does_not_stop_the_next_start(tmp_path: Path) -> None:
    first = Desk(tmp_path)
    first.episode("started", started_at="0001-01-01T00:00:00.000Z")
    first.telemetry(**LOCKED_INSIDE)
    assert CRITICAL in first.open_types()
    second = restart(first, tmp_path)  # raised ValidationError here, every time, before
    try:
        assert CRITICAL in second.open_types()
        second.telemetry(**UNLOCKED_EMPTY)
        assert CRITICAL not in second.open_types()
        second.telemetry(**LOCKED_INSIDE)
        assert CRITICAL in second.open_types(), "the restarted collector still raises"
        stored = sqlite3.connect(tmp_path / "collector.db").execute(
            "select json_extract(body, '$.started_at') from message where kind = 'episode'"
        )
        assert stored.fetchall() == [("0001-01-01T00:00:00.000Z",)], "kept as it came"
    finally:
        second.close()


def test_a_time_from_year_one_is_not_taken_for_the_episode_start(desk: Desk) -> None:
    desk.episode("started", started_at="0001-01-01T00:00:00.000Z")
    desk.collector.tick()
    assert "time_limit_exceeded" not in desk.open_types(), "2,025 years in seclusion"
    view = desk.collector.room_snapshot((SITE, ROOM))
    assert view is not None and view.view.episode_started == desk.clock.now()


# ---------------------------------------------------- finding 2: a future ts silences a door


def test_a_reading_from_year_9999_does_not_keep_a_locked_door_quiet(
    desk: Desk, tmp_path: Path
) -> None:
    desk.telemetry(**LOCKED_INSIDE)
    assert desk.open_types()[CRITICAL] is wire.Severity.CRITICAL
    desk.clock.advance(1)
    forged_telemetry(desk, "9999-12-31T23:59:59.999Z", **UNLOCKED_EMPTY)
    skew = desk.open_types().get("clock_skew")
    for _ in range(3):  # the real readings go on: locked, occupied
        desk.clock.advance(10)
        desk.telemetry(**LOCKED_INSIDE)
        assert CRITICAL in desk.open_types(), "the locked door was silenced"
    assert skew is wire.Severity.WARNING, "a clock years ahead is a warning of its own"
    assert "clock_skew" not in desk.open_types(), "resolved by messages in the window"
    db = sqlite3.connect(tmp_path / "collector.db")
    assert wait_until(
        lambda: db.execute("select count(*) from message where clock_skew_s > 0").fetchone() == (1,)
    ), "stored with the message, flagged"
    assert wait_until(
        lambda: db.execute("select message from alert where type = 'clock_skew'").fetchall() != []
    )
    (said,) = db.execute("select message from alert where type = 'clock_skew'").fetchone()
    assert "years ahead" in said, said

    again = restart(desk, tmp_path)
    try:
        again.collector.tick()
        assert CRITICAL in again.open_types(), "the rebuilt view took the year-9999 reading"
        again.telemetry(**LOCKED_INSIDE)
        assert CRITICAL in again.open_types()
    finally:
        again.close()


def test_a_forged_sequence_number_does_not_freeze_the_room(desk: Desk) -> None:
    desk.telemetry(**LOCKED_INSIDE)
    forged_telemetry(desk, wire.format_ts(desk.clock.now()), seq=2**63 - 1, **UNLOCKED_EMPTY)
    assert CRITICAL not in desk.open_types()
    desk.clock.advance(10)
    desk.telemetry(**LOCKED_INSIDE)  # numbered below the forged one, and later
    assert CRITICAL in desk.open_types()


def test_readings_are_ordered_by_sequence_not_by_the_time_they_claim(desk: Desk) -> None:
    desk.clock.advance(600)
    now = desk.clock.now()
    forged_telemetry(desk, wire.format_ts(now), seq=5, **UNLOCKED_EMPTY)
    # The agent's clock stepped back a little (NTP): seq 6 is still the newer reading.
    forged_telemetry(desk, wire.format_ts(now - timedelta(seconds=1)), seq=6, **LOCKED_INSIDE)
    assert CRITICAL in desk.open_types(), "seq 6 is the newer reading, whatever its time"
    replay = wire.format_ts(now - timedelta(seconds=5))
    forged_telemetry(desk, replay, seq=4, **UNLOCKED_EMPTY)  # an older reading replayed
    assert CRITICAL in desk.open_types(), "an older number replayed changed the room"


def test_an_agent_that_numbers_afresh_is_followed(desk: Desk) -> None:
    """A new outbox (a replaced SD card) starts again at 0: as the sequence tracking does,
    the room view follows it (a lower number with a believed, later time)."""
    desk.clock.advance(60)
    forged_telemetry(desk, wire.format_ts(desk.clock.now()), seq=90_000, **UNLOCKED_EMPTY)
    desk.clock.advance(10)
    forged_telemetry(desk, wire.format_ts(desk.clock.now()), seq=0, **LOCKED_INSIDE)
    assert CRITICAL in desk.open_types()


def test_an_agent_whose_clock_is_years_behind_is_judged_by_arrival_and_warned(
    desk: Desk,
) -> None:
    desk.clock.advance(60)
    stamp = "2000-01-01T00:00:00.000Z"  # an RTC whose battery died
    forged_telemetry(desk, stamp, **LOCKED_INSIDE)
    alert = next(a for a in desk.collector.desk.open.values() if a.type.value == CRITICAL)
    assert alert.raised_at == desk.clock.now(), "raised when it arrived, not in year 2000"
    assert not alert.late
    desk.clock.advance(10)
    forged_telemetry(desk, stamp, **LOCKED_INSIDE)
    assert "clock_skew" in desk.open_types(), "stays open while the clock is off"
    skew = next(a for a in desk.collector.desk.open.values() if a.type.value == "clock_skew")
    assert "years behind" in skew.message


def test_the_window_is_configurable(tmp_path: Path) -> None:
    desk = Desk(tmp_path, clock_ahead_s=5, clock_behind_s=60)
    try:
        desk.clock.advance(600)
        ahead = desk.clock.now() + timedelta(seconds=30)
        forged_telemetry(desk, wire.format_ts(ahead), **UNLOCKED_EMPTY)
        assert "clock_skew" in desk.open_types(), "30 s ahead is past a 5-s window"
        desk.clock.advance(1)
        desk.telemetry()
        assert "clock_skew" not in desk.open_types()
        desk.clock.advance(1)
        behind = desk.clock.now() - timedelta(seconds=90)
        forged_telemetry(desk, wire.format_ts(behind), **LOCKED_INSIDE)
        assert "clock_skew" in desk.open_types(), "90 s behind is past a 60-s window"
    finally:
        desk.close()


def test_a_time_ahead_inside_the_window_cannot_shadow_a_locked_door(desk: Desk) -> None:
    """A forged number with a time just inside the window ahead (119 s) must not hide the
    agent's next readings for two minutes: a time ahead of arrival counts from arrival."""
    desk.telemetry(**LOCKED_INSIDE)
    ahead = wire.format_ts(desk.clock.now() + timedelta(seconds=119))
    forged_telemetry(desk, ahead, seq=2**63 - 1, **UNLOCKED_EMPTY)
    assert "clock_skew" not in desk.open_types(), "inside the window"
    desk.clock.advance(10)
    desk.telemetry(**LOCKED_INSIDE)  # numbered below the forged one, and after its arrival
    assert CRITICAL in desk.open_types()


def test_an_agent_clock_ahead_inside_the_window_does_not_delay_a_lapse(desk: Desk) -> None:
    """An agent whose clock runs 110 s ahead (drift, no NTP; inside the window) is still
    late for nothing: the lapse is raised 10 s after staff left, as they arrive here."""
    desk.clock.advance(60)

    def ahead() -> str:
        return wire.format_ts(desk.clock.now() + timedelta(seconds=110))

    desk.episode("started", started_at=ahead(), ts=ahead())
    forged_telemetry(desk, ahead(), occupied=True, door_locked=False, episode_id="e1")
    desk.clock.advance(1)
    away: dict[str, Any] = {
        "occupied": True,
        "door_locked": False,
        "staff_present": False,
        "episode_id": "e1",
    }
    forged_telemetry(desk, ahead(), **away)
    for _ in range(11):
        desk.clock.advance(1)
        desk.collector.tick()
    assert desk.open_types()["monitoring_lapse"] is wire.Severity.CRITICAL
