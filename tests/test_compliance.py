"""Compliance in the running collector and on the command line: deadline alerts on the alert
desk, acknowledgements and notifications in the audit trail, `roomwatch audit verify` after
edits behind the app's back, a student's export and deletion, telemetry downsampling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from compliance_world import (
    CALENDAR,
    episode_messages,
    fixed,
    full_record,
    open_engine,
    telemetry,
)
from conftest import wait_until
from roomwatch.cli.main import main
from roomwatch.collector import audit, incidents
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.models import AlertRecord, AuditEntry, TelemetryRecord
from roomwatch.collector.service import Collector
from roomwatch.collector.storage import Store
from roomwatch.compliance import privacy, records, retention
from roomwatch.compliance.deadlines import COMPLIANCE_TYPES, DeadlineCheck
from roomwatch.compliance.jobs import attach_checks
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.core.incident import IncidentRecord
from roomwatch.firmware_config import MqttSettings

LOCAL = ZoneInfo("America/Chicago")
MONDAY = date(2026, 11, 23)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), LOCAL).astimezone(UTC)


class World:
    """A collector that never connects (the alert desk and writer run), on SQLite."""

    def __init__(self, folder: Path, profile: str = "us-ny", start: date = MONDAY) -> None:
        self.clock = VirtualClock(at(start, 9))
        self.url = f"sqlite:///{folder / 'c.db'}"
        self.config = CollectorConfig(
            mqtt=MqttSettings(port=1),
            database_url=self.url,
            default_profile=profile,
            school_calendar=CALENDAR,
        )
        self.collector = Collector(self.config, self.clock)
        self.collector.open()
        self.engine = self.collector.store.engine
        self.check = DeadlineCheck(
            self.engine, self.config, lambda: list(self.collector.desk.open.values())
        )
        self.seq = 0

    def episode(self, episode_id: str, start: datetime, minutes: float, room: str = "r") -> None:
        end = start + timedelta(minutes=minutes)
        self.seq += 10
        messages = episode_messages("s", room, episode_id, start, end, self.seq)
        Store(self.engine).write_batch([(m, end) for m in messages])

    def run_check(self, now: datetime) -> list[tuple[str, str, str | None]]:
        self.clock.advance((now - self.clock.now()).total_seconds())
        steps = self.collector.run_check(self.check, COMPLIANCE_TYPES)
        return [(t.state.value, t.alert.type.value, t.alert.episode_id) for t in steps]

    def stored_alerts(self) -> list[tuple[str, str, str | None]]:
        with Session(self.engine) as session:
            return sorted(
                (a.type, a.state, a.episode_id) for a in session.exec(select(AlertRecord)).all()
            )

    def close(self) -> None:
        self.collector.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_paperwork_deadlines_raise_and_resolve_alerts(world: World) -> None:
    world.episode("s.r.e1", at(MONDAY, 10), 8)
    # NY: parents by the end of the school day (002 §9); the record by then too.
    assert world.run_check(at(MONDAY, 15, 0)) == []
    raised = world.run_check(at(MONDAY, 15, 31))
    assert sorted(raised) == [
        ("raised", "parent_notification_overdue", "s.r.e1"),
        ("raised", "record_incomplete", "s.r.e1"),
    ]
    assert world.run_check(at(MONDAY, 15, 40)) == []  # still open: raised once
    record = full_record("S1", at(MONDAY, 16))
    incidents.save(world.engine, "s.r.e1", record, "u-teacher", 0, world.clock.now)
    resolved = world.run_check(at(MONDAY, 16, 5))
    assert sorted(resolved) == [
        ("resolved", "parent_notification_overdue", "s.r.e1"),
        ("resolved", "record_incomplete", "s.r.e1"),
    ]
    assert wait_until(lambda: len(world.stored_alerts()) == 2)
    assert wait_until(lambda: {s for _, s, _ in world.stored_alerts()} == {"resolved"})


def test_the_tenth_school_day_raises_frequent_use(tmp_path: Path) -> None:
    day = MONDAY - timedelta(days=21)
    world = World(tmp_path, start=day)
    try:
        _ten_days(world, day)
    finally:
        world.close()


def _ten_days(world: World, day: date) -> None:
    n = 0
    while n < 10:
        if CALENDAR.is_school_day(day):
            eid = f"s.r.d{n}"
            world.episode(eid, at(day, 10), 5)
            incidents.save(world.engine, eid, full_record("S7", at(day, 11)), "u1", 0,
                           fixed(at(day, 12)))  # fmt: skip
            n += 1
            if n == 9:
                assert all(t != "frequent_use" for _, t, _ in world.run_check(at(day, 13)))
        day += timedelta(days=1)
    steps = world.run_check(world.clock.now() + timedelta(days=1))
    assert ("raised", "frequent_use", "s.r.d9") in steps
    alert = next(a for a in world.collector.desk.open.values() if a.type.value == "frequent_use")
    assert alert.subject == "student:S7" and "10 school days" in alert.message


def test_illinois_repeats_within_three_hours_raise_the_written_evaluation(
    tmp_path: Path,
) -> None:
    """003 App. B, IL: "repeated episodes ... during any three-hour period" (us-il.yaml)."""
    world = World(tmp_path, profile="us-il")
    try:
        world.episode("s.a.1", at(MONDAY, 9, 0), 5, room="a")  # room a: 9:00-9:05
        world.episode("s.a.2", at(MONDAY, 9, 25), 5, room="a")  # 20 min after the end: a repeat
        world.episode("s.b.1", at(MONDAY, 9, 0), 5, room="b")  # room b: 9:00-9:05
        world.episode("s.b.2", at(MONDAY, 13, 0), 5, room="b")  # 3 h 55 min later: none
        steps = world.run_check(at(MONDAY, 13, 10))
        assert [s for s in steps if s[1] == "frequent_use"] == [("raised", "frequent_use", "s.a.2")]
        alert = next(a for a in world.collector.desk.open.values() if a.episode_id == "s.a.2")
        assert alert.subject == "repeat:written_evaluation"
        assert "began 20 min after episode s.a.1 in a ended" in alert.message
        assert "licensed educator" in alert.message  # the checkpoint's action
        # The records name two different students: not a repeat after all.
        for eid, ref in (("s.a.1", "S1"), ("s.a.2", "S2")):
            incidents.save(world.engine, eid, full_record(ref, at(MONDAY, 10)), "u1", 0,
                           fixed(at(MONDAY, 13, 11)))  # fmt: skip
        assert ("resolved", "frequent_use", "s.a.2") in world.run_check(at(MONDAY, 13, 12))
        # The same student in another room 2 h later: a repeat by the student.
        world.episode("s.b.3", at(MONDAY, 11, 0), 5, room="b")
        incidents.save(world.engine, "s.b.3", full_record("S2", at(MONDAY, 11)), "u1", 0,
                       fixed(at(MONDAY, 13, 13)))  # fmt: skip
        steps = world.run_check(at(MONDAY, 13, 14))
        assert ("raised", "frequent_use", "s.b.3") in steps
        alert = next(a for a in world.collector.desk.open.values() if a.episode_id == "s.b.3")
        assert "after episode s.a.2 of the same student" in alert.message
        # s.b.2 (13:00) is now 1 h 55 min after s.b.3 (11:00-11:05), in the same room.
        assert ("raised", "frequent_use", "s.b.2") in steps
    finally:
        world.close()


def test_deadline_alerts_reach_the_live_pages_and_a_settled_store(world: World) -> None:
    """The web app's live board hears a check's alerts as it hears a tick's; settle() means
    what was received is stored (the simulator runs the checks after it)."""
    heard: list[str] = []
    world.collector.listeners.append(
        lambda change: heard.extend(t.alert.type.value for t in change.transitions)
    )
    world.episode("s.r.e1", at(MONDAY, 10), 8)
    world.run_check(at(MONDAY, 15, 31))
    assert sorted(heard) == ["parent_notification_overdue", "record_incomplete"]
    assert world.collector.settle(10)
    assert len(world.stored_alerts()) == 2  # stored: no waiting needed after settle
    # What the simulator runs is what `roomwatch collector` registers (compliance/jobs.py).
    attach_checks(world.collector, world.config)
    ((check, owned, every_s),) = world.collector.periodic_checks
    assert isinstance(check, DeadlineCheck) and owned == COMPLIANCE_TYPES
    assert every_s == world.config.compliance.check_every_s


def test_a_profile_without_a_repeat_window_raises_no_repeat(world: World) -> None:
    world.episode("s.r.1", at(MONDAY, 9, 0), 5)
    world.episode("s.r.2", at(MONDAY, 9, 25), 5)
    assert all(t != "frequent_use" for _, t, _ in world.run_check(at(MONDAY, 10)))


def test_acknowledgements_and_notifications_are_audited(world: World) -> None:
    world.episode("s.r.e1", at(MONDAY, 10), 8)
    world.run_check(at(MONDAY, 16))
    alert = next(iter(world.collector.desk.open.values()))
    world.collector.acknowledge(alert.alert_id, "u-principal")
    from roomwatch.collector.delivery import Attempt

    world.collector._record_attempt(
        Attempt(alert.alert_id, "raised", 1, "json://127.0.0.1/x", at(MONDAY, 16), False,
                "refused", 1)
    )  # fmt: skip

    def actions() -> list[tuple[str, str, str]]:
        with Session(world.engine) as session:
            return [
                (e.actor, e.action, e.subject)
                for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()  # type: ignore[arg-type]
            ]

    assert wait_until(lambda: len(actions()) == 2)
    assert actions() == [
        ("u-principal", "alert.acknowledged", f"alert:{alert.alert_id}"),
        ("system", "notification.failed", f"alert:{alert.alert_id}"),
    ]
    assert audit.verify(world.engine).ok


# ------------------------------------------------------------------- audit verify


@pytest.fixture
def filled(database_url: str) -> Iterator[tuple[Engine, str]]:
    engine, url = _filled(database_url)
    yield engine, url
    engine.dispose()


def _filled(url: str) -> tuple[Engine, str]:
    engine = open_engine(url, fast=False)
    store = Store(engine)
    for n in range(3):
        start = at(MONDAY, 10 + n)
        end = start + timedelta(minutes=5)
        store.write_batch(
            [(m, end) for m in episode_messages("s", "r", f"s.r.e{n}", start, end, 10 * n + 1)]
        )
        incidents.save(engine, f"s.r.e{n}", full_record(f"S{n}", end), "u-teacher", 0, fixed(end))
    incidents.save(engine, "s.r.e1", full_record("S1", end, notes="called twice"), "u-head", 1,
                   lambda: at(MONDAY, 14))  # fmt: skip
    return engine, url


def verify(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", "--db", url])
    return result.exit_code, result.output


def test_audit_verify_passes_an_untouched_database(filled: tuple[Engine, str]) -> None:
    engine, url = filled
    code, out = verify(url)
    assert code == 0, out
    assert f"OK: 4 entries, head {audit.head_of(engine)}" in out
    # A head printed on an export stays in the trail; a cut trail loses it.
    head = audit.head_of(engine)
    result = CliRunner().invoke(main, ["audit", "verify", "--db", url, "--head", head])
    assert result.exit_code == 0 and "The export's chain head is entry 4." in result.output
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    result = CliRunner().invoke(main, ["audit", "verify", "--db", url, "--head", head])
    assert result.exit_code == 1 and f"chain head {head} is not in the trail" in result.output


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (
            "UPDATE audit_log SET actor = 'u-nobody' WHERE seq = 2",
            "BROKEN at entry 2: entry 2 was changed after it was written; the entry says: "
            "u-nobody did incident.created on incident:s.r.e1",
        ),
        ("DELETE FROM audit_log WHERE seq = 3", "BROKEN at entry 4: entry 4 follows 2"),
        (
            "UPDATE incident_record SET supervised_by = 'Nobody' WHERE episode_id = 's.r.e2'",
            "BROKEN: incident record of episode s.r.e2: field supervised_by is 'Nobody' in the "
            "table but 'A. Aide' per the audit trail (edited) (last audited change: entry 3, "
            "incident.created by u-teacher",
        ),
        (
            "DELETE FROM incident_record WHERE episode_id = 's.r.e1'",
            "BROKEN: incident record of episode s.r.e1: the row is missing (deleted) (last "
            "audited change: entry 4, incident.updated by u-head",
        ),
        (
            "INSERT INTO incident_record SELECT 's.r.e9', student_ref, precipitating_factors, "
            "initiated_by, supervised_by, removed_by, behavior_before, behavior_during, "
            "behavior_after, student_injury, staff_injury, injury_details, parent_notified_by, "
            "parent_notified_whom, parent_notification_method, parent_notified_at, notes, version,"
            " created_at, updated_at, updated_by FROM incident_record WHERE episode_id = 's.r.e0'",
            "BROKEN: incident record of episode s.r.e9: the row has no audit entry (inserted)",
        ),
    ],
)
def test_audit_verify_names_what_was_changed_behind_the_apps_back(
    filled: tuple[Engine, str], tamper: str, words: str
) -> None:
    """On SQLite and PostgreSQL, with foreign keys out of the way as a tamperer would."""
    engine, url = filled
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("PRAGMA foreign_keys=OFF"))
        else:
            connection.execute(text("SET session_replication_role = replica"))
        connection.execute(text(tamper))
    code, out = verify(url)
    assert code == 1
    assert words in out, out


# ----------------------------------------------------------------- privacy


def test_a_student_is_exported_then_deleted_leaving_an_audit_entry(
    filled: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, url = filled
    out = tmp_path / "s1.json"
    result = CliRunner().invoke(
        main, ["student", "export", "S1", "--by", "u-admin", "--db", url, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text())
    (episode,) = exported["episodes"]
    assert episode["episode_id"] == "s.r.e1" and episode["record"]["notes"] == "called twice"
    assert [h["action"] for h in episode["history"]] == ["incident.created", "incident.updated"]
    assert episode["verdict"]["items"][0]["id"] == "door_unlocked"

    result = CliRunner().invoke(
        main, ["student", "delete", "S1", "--by", "u-admin", "--yes", "--db", url]
    )
    assert result.exit_code == 0 and "anonymised 1 record(s) of S1" in result.output
    stored = incidents.load(engine, "s.r.e1")
    assert stored.record.student_ref is None and stored.record.behavior_during == ""
    assert stored.record.parent_notified_at is not None  # the district still counts this
    assert stored.record.initiated_by == "T. Teacher"
    with Session(engine) as session:
        last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
        anonymised = session.exec(
            select(AuditEntry).where(AuditEntry.action == "incident.anonymised")
        ).one()
    assert last is not None and (last.action, last.subject) == (
        "student.deleted",
        "student:deleted",
    )
    assert "S1" not in json.dumps([last.detail, last.subject, anonymised.detail])
    assert "student_ref" in anonymised.detail["cleared"]
    assert verify(url)[0] == 0  # the replay knows the anonymisation
    assert records.check(engine) == []
    with pytest.raises(privacy.UnknownStudentError):
        privacy.delete_student(engine, "S1", "u-admin", lambda: at(MONDAY, 15))
    result = CliRunner().invoke(main, ["student", "export", "Jane Doe", "--by", "u", "--db", url])
    assert result.exit_code == 1 and "is not a student reference" in result.output


# ---------------------------------------------------------------- retention


def test_old_telemetry_becomes_per_minute_aggregates(database_url: str) -> None:
    engine = open_engine(database_url)
    start = at(MONDAY, 10)
    messages: list[wire.Message] = list(
        episode_messages("s", "r", "s.r.e1", start, start + timedelta(seconds=120), 1)
    )
    for s in range(120):  # one reading a second for two minutes
        messages.append(
            telemetry("s", "r", start + timedelta(seconds=s), 10 + s, episode_id="s.r.e1",
                      temperature_c=20.0 + (s % 60) / 10, lux=300.0 - s, staff_present=s != 70)
        )  # fmt: skip
    recent = telemetry("s", "r", start + timedelta(days=40), 500)
    Store(engine).write_batch([(m, start) for m in [*messages, recent]])
    incidents.save(engine, "s.r.e1", IncidentRecord(student_ref="S1"), "u1", 0, lambda: start)

    done = retention.downsample(engine, 30, lambda: start + timedelta(days=41))
    assert (done.rows_removed, done.rows_written, done.verdicts_kept) == (120, 2, 1)
    with Session(engine) as session:
        rows = session.exec(select(TelemetryRecord).order_by(TelemetryRecord.ts)).all()  # type: ignore[arg-type]
        last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
    first, second, kept = rows
    assert first.message_id.startswith("agg-") and kept.message_id == recent.id
    assert first.temperature_c == pytest.approx(20 + 2.95)  # mean of 20.0 .. 25.9
    assert (first.lux, second.lux) == (241.0, 181.0)  # the lowest of each minute
    assert (first.staff_present, second.staff_present) == (True, False)  # any absence shows
    assert last is not None and last.action == "telemetry.downsampled"
    assert last.detail["rows_removed"] == 120 and audit.verify(engine).ok
    again = retention.downsample(engine, 30, lambda: start + timedelta(days=41))
    assert (again.rows_removed, again.rows_written) == (0, 0)  # aggregates are not redone
    engine.dispose()


def test_the_report_command_writes_each_format(filled: tuple[Engine, str], tmp_path: Path) -> None:
    engine, url = filled
    for fmt in ("csv", "json", "pdf"):
        out = tmp_path / f"r.{fmt}"
        result = CliRunner().invoke(
            main,
            ["report", "district", "--from", "2026-11-01", "--to", "2026-11-30", "--format", fmt,
             "--db", url, "--output", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert audit.head_of(engine) in result.output
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["incidents"] == 3
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    result = CliRunner().invoke(
        main, ["report", "district", "--from", "2026-11-30", "--to", "2026-11-01", "--db", url]
    )
    assert result.exit_code == 1 and "ends (2026-11-01) before it starts" in result.output


def test_incident_records_are_read_through_the_read_side(tmp_path: Path) -> None:
    """The public replacement for collector/incidents.py's private row conversion: plain
    records, times in UTC though SQLite hands them back naive."""
    from roomwatch.collector.read import incident_records

    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    t0 = datetime(2026, 2, 2, 15, tzinfo=UTC)
    end = t0 + timedelta(minutes=20)
    Store(engine).write_batch([(m, t0) for m in episode_messages("s", "r", "s.r.e1", t0, end, 1)])
    incidents.save(engine, "s.r.e1", full_record("S001", t0), "u-teacher", 0, lambda: end)
    (found,) = incident_records.incidents_of(engine, ["s.r.e1", "s.r.none"]).values()
    assert (found.version, found.updated_by, found.updated_at) == (1, "u-teacher", end)
    assert found.record.parent_notified_at == t0 and found.record.student_ref == "S001"
    ((episode, same),) = incident_records.records_of_student(engine, "S001")
    assert (episode.episode_id, episode.started_at, same) == ("s.r.e1", t0, found)
    (entry,) = incident_records.incident_history(engine, ["s.r.e1"])
    assert (entry.action, entry.actor, entry.at) == ("incident.created", "u-teacher", end)
    engine.dispose()
