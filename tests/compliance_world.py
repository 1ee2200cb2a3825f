"""A generated school year for the compliance tests: rooms, episodes, telemetry and incident
records written the way the collector and the web app write them (Store.write_batch and
incidents.save), with the truth kept in memory so tests can compute every figure
independently of the report code."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event

from roomwatch.collector import incidents
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.database import make_engine, migrate
from roomwatch.collector.storage import Store
from roomwatch.core import wire
from roomwatch.core.calendar import DateRange, SchoolCalendar
from roomwatch.core.incident import IncidentRecord, NotificationMethod

ZONE = "America/Chicago"
CALENDAR = SchoolCalendar(
    timezone=ZONE,
    holidays=[date(2025, 11, 27), date(2025, 11, 28), date(2026, 1, 19)],
    breaks=[
        DateRange(first=date(2025, 12, 22), last=date(2026, 1, 2), name="winter"),
        DateRange(first=date(2026, 3, 23), last=date(2026, 3, 27), name="spring"),
    ],
)
YEAR_START, YEAR_END = date(2025, 9, 2), date(2026, 6, 5)


def config(**more: Any) -> CollectorConfig:
    return CollectorConfig(school_calendar=CALENDAR, default_profile="us-mn", **more)


def open_engine(url: str, fast: bool = True) -> Engine:
    """The collector's engine; ``fast`` turns off SQLite's fsync for bulk test data (the
    collector's own pragmas run first, so this one wins)."""
    engine = make_engine(url)
    if fast and url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

    migrate(engine)
    return engine


def fixed(at: datetime) -> Callable[[], datetime]:
    """A clock stopped at ``at`` (for saves that happened then)."""
    return lambda: at


def message(model: type[wire.Message], site: str, room: str, at: datetime, **fields: Any) -> Any:
    envelope = {"id": f"m{next(_ids)}", "ts": at, "site": site, "room": room}
    return model.model_validate(envelope | fields)


def _counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


_ids = _counter()


def telemetry(site: str, room: str, at: datetime, seq: int, **readings: Any) -> wire.Telemetry:
    values = {
        "temperature_c": 21.5,
        "lux": 310.0,
        "co2_ppm": None,
        "occupied": True,
        "door_closed": False,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": None,
    } | readings
    result: wire.Telemetry = message(wire.Telemetry, site, room, at, seq=seq, **values)
    return result


def episode_messages(
    site: str, room: str, episode_id: str, start: datetime, end: datetime | None, seq: int
) -> list[wire.Message]:
    found: list[wire.Message] = [
        message(wire.Episode, site, room, start, seq=seq, event=wire.EpisodeEvent.STARTED,
                episode_id=episode_id, started_at=start, ended_at=None, reason="staff")
    ]  # fmt: skip
    if end is not None:
        found.append(
            message(wire.Episode, site, room, end, seq=seq + 1, event=wire.EpisodeEvent.ENDED,
                    episode_id=episode_id, started_at=start, ended_at=end, reason="staff")
        )  # fmt: skip
    return found


def event_message(site: str, room: str, at: datetime, seq: int, type_: str, **fields: Any) -> Any:
    return message(wire.Event, site, room, at, seq=seq, type=type_, **fields)


def full_record(ref: str | None, notified_at: datetime | None, **more: Any) -> IncidentRecord:
    values: dict[str, Any] = {
        "student_ref": ref,
        "precipitating_factors": "threw a chair",
        "initiated_by": "T. Teacher",
        "supervised_by": "A. Aide",
        "removed_by": "A. Aide",
        "behavior_before": "agitated",
        "behavior_during": "shouting, then calm",
        "behavior_after": "returned to class",
        "student_injury": False,
        "staff_injury": False,
        "parent_notified_by": "T. Teacher",
        "parent_notified_whom": "mother",
        "parent_notification_method": NotificationMethod.PHONE,
        "parent_notified_at": notified_at,
    }
    return IncidentRecord.model_validate(values | more)


@dataclass
class Generated:
    episode_id: str
    site: str
    room: str
    start: datetime
    end: datetime
    student_ref: str | None
    student_injury: bool | None
    staff_injury: bool | None


@dataclass
class Year:
    episodes: list[Generated] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    rooms: list[tuple[str, str]] = field(default_factory=list)


def school_days() -> list[date]:
    days, day = [], YEAR_START
    while day <= YEAR_END:
        if CALENDAR.is_school_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def generate_year(
    engine: Engine, seed: int = 7, episodes: int = 3000, sites: int = 3, rooms_per_site: int = 8
) -> Year:
    """Write a school year of episodes (one telemetry reading each) and their records."""
    rng = random.Random(seed)
    zone = ZoneInfo(ZONE)
    store = Store(engine)
    year = Year(sites=[f"school-{i + 1}" for i in range(sites)])
    year.rooms = [(s, f"room-{j + 1}") for s in year.sites for j in range(rooms_per_site)]
    students = {s: [f"S{i:02d}{n:03d}" for n in range(40)] for i, s in enumerate(year.sites)}
    days = school_days()
    seqs: dict[tuple[str, str], int] = {}
    batch: list[tuple[wire.Message, datetime]] = []
    for n in range(episodes):
        site, room = rng.choice(year.rooms)
        day = rng.choice(days)
        local = datetime.combine(day, time(8, 0), zone) + timedelta(
            seconds=rng.randint(0, 6 * 3600)
        )
        start = local.astimezone(UTC).replace(microsecond=0)
        seconds = min(7200, max(20, int(rng.expovariate(1 / 480))))
        end = start + timedelta(seconds=seconds)
        # A few students use the room often (the 10-day rule must find them).
        pool = students[site]
        ref = rng.choice(pool[:4]) if rng.random() < 0.3 else rng.choice(pool)
        ref_or_none = ref if rng.random() > 0.04 else None
        student_injury = rng.random() < 0.03 if rng.random() > 0.02 else None
        staff_injury = rng.random() < 0.06
        episode_id = f"{site}.{room}.e{n:05d}"
        seq = seqs.get((site, room), 0)
        seqs[(site, room)] = seq + 3
        for m in episode_messages(site, room, episode_id, start, end, seq + 1):
            batch.append((m, end))
        middle = start + timedelta(seconds=seconds // 2)
        temperature = round(rng.uniform(17, 28), 1)
        reading = telemetry(
            site, room, middle, seq + 3, episode_id=episode_id, temperature_c=temperature
        )
        batch.append((reading, end))
        year.episodes.append(
            Generated(episode_id, site, room, start, end, ref_or_none, student_injury, staff_injury)
        )
        if len(batch) >= 3000:
            store.write_batch(batch)
            batch = []
    store.write_batch(batch)
    for g in year.episodes:
        record = full_record(
            g.student_ref,
            g.start + timedelta(minutes=30),
            student_injury=g.student_injury,
            staff_injury=g.staff_injury,
            injury_details="bruise" if g.student_injury or g.staff_injury else "",
        )
        incidents.save(engine, g.episode_id, record, "u-staff", 0, fixed(g.end))
    return year
