"""The episode verdict: each audit question of POLICIES.md answered with its evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from compliance_world import config, event_message, full_record, open_engine, telemetry
from roomwatch.collector import incidents
from roomwatch.collector.storage import Store
from roomwatch.compliance import verdicts as db_verdicts
from roomwatch.core import rules, wire
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.episode_facts import AlertFact, EpisodeFacts, EventFact, Reading
from roomwatch.core.policy import load_profile
from roomwatch.core.verdict import (
    Outcome,
    judge,
)

ZONE = ZoneInfo("America/Chicago")
CAL = SchoolCalendar(timezone="America/Chicago")
MONDAY = date(2026, 11, 23)
START = datetime.combine(MONDAY, time(10, 0), ZONE).astimezone(UTC)


def readings(seconds: int, every: int = 10, **values: object) -> list[Reading]:
    base = {"temperature_c": 21.0, "lux": 300.0, "door_locked": False, "staff_present": True}
    return [
        Reading(START + timedelta(seconds=s), **(base | values))  # type: ignore[arg-type]
        for s in range(0, seconds + 1, every)
    ]


def facts(profile: str = "us-ny", minutes: float = 8, **more: object) -> EpisodeFacts:
    end = START + timedelta(minutes=minutes)
    base = EpisodeFacts(
        episode_id="s.r.e1",
        site="s",
        room="r",
        started_at=START,
        ended_at=end,
        profile=load_profile(profile),
        calendar=CAL,
        readings=readings(int(minutes * 60)),
        record=full_record("S001", START + timedelta(minutes=20)),
        record_version=2,
        record_updated_by="u-teacher",
    )
    return replace(base, **more)  # type: ignore[arg-type]


AFTER = START + timedelta(days=3)


def outcomes(f: EpisodeFacts, now: datetime = AFTER) -> dict[str, Outcome]:
    return {i.id: i.outcome for i in judge(f, now).items}


def test_a_well_run_episode_passes_every_question() -> None:
    v = judge(facts(), AFTER)
    assert v.outcome is Outcome.PASS, [(i.id, i.summary) for i in v.items]
    assert [i.id for i in v.items] == [
        "door_unlocked",
        "watched",
        "within_limit",
        "environment",
        "parents_notified",
        "record_complete",
    ]
    document = json.loads(v.model_dump_json())
    assert document["items"][4]["evidence"]["notified_by"] == "T. Teacher"
    assert document["items"][5]["evidence"]["updated_by"] == "u-teacher"


def test_a_locked_reading_fails_the_door_with_its_time() -> None:
    locked = [*readings(480)]
    locked[5] = replace(locked[5], door_locked=True)
    v = judge(facts(readings=locked), AFTER)
    item = v.item("door_unlocked")
    assert item.outcome is Outcome.FAIL and v.outcome is Outcome.FAIL
    assert item.evidence["locked_at"] == [locked[5].ts.isoformat()]


def test_missing_readings_leave_the_door_unknown_not_passed() -> None:
    sparse = [r for r in readings(480) if r.ts < START + timedelta(minutes=2)]
    assert outcomes(facts(readings=sparse))["door_unlocked"] is Outcome.UNKNOWN
    assert outcomes(facts(readings=[]))["watched"] is Outcome.UNKNOWN


def test_staff_away_longer_than_the_profile_allows_is_a_lapse() -> None:
    away = [
        replace(r, staff_present=False) if 60 <= (r.ts - START).total_seconds() <= 90 else r
        for r in readings(480)
    ]
    item = judge(facts(readings=away), AFTER).item("watched")
    assert item.outcome is Outcome.FAIL
    assert item.evidence["lapses"][0]["seconds"] == 40.0  # from 60 s to the reading at 100 s
    short = [
        replace(r, staff_present=False) if (r.ts - START).total_seconds() == 60 else r
        for r in readings(480)
    ]
    assert outcomes(facts(readings=short))["watched"] is Outcome.PASS  # 10 s: not more than 10


def test_agent_lapse_events_and_alerts_count_too() -> None:
    events = [
        EventFact(START + timedelta(seconds=30), "monitoring_lapse"),
        EventFact(START + timedelta(seconds=75), "monitoring_restored", {"lapse_s": 45.0}),
    ]
    item = judge(facts(events=events), AFTER).item("watched")
    assert item.outcome is Outcome.FAIL and item.evidence["lapses"][0]["seconds"] == 45.0
    alert = AlertFact("a1", "seclusion_prohibited", START + timedelta(seconds=20), "u1")
    assert outcomes(facts(alerts=[alert]))["watched"] is Outcome.FAIL


def test_past_the_limit_fails_and_checkpoints_need_a_staff_checkin() -> None:
    item = judge(facts(minutes=16), AFTER).item("within_limit")  # us-ny: 15 min (002 §6)
    assert item.outcome is Outcome.FAIL and "15-min limit" in item.summary
    # Connecticut: a determination at 15 min, then every 30 (seed 003); limit 60 min.
    ct = facts("us-ct", minutes=50)
    item = judge(ct, AFTER).item("within_limit")
    assert item.outcome is Outcome.FAIL and item.evidence["checkpoints_unmet"] == 2
    checkins = [
        EventFact(START + timedelta(minutes=16), "staff_checkin", {"by": "u-principal"}),
        EventFact(START + timedelta(minutes=46), "staff_checkin", {"by": "u-principal"}),
    ]
    item = judge(replace(ct, events=checkins), AFTER).item("within_limit")
    assert item.outcome is Outcome.PASS
    assert item.evidence["checkpoints_due"][1]["met_by"] == "u-principal"


def test_maryland_says_its_limit_is_a_hard_maximum() -> None:
    """time_limit.hard_cap (us-md, 003 App. B MD): the verdict says it may not be extended."""
    md = {i.id: i for i in judge(facts("us-md", minutes=31), AFTER).items}["within_limit"]
    assert md.outcome is Outcome.FAIL and md.evidence["hard_cap"] is True
    assert md.evidence["basis"] == load_profile("us-md").time_limit.basis  # time_limit.basis
    assert "a hard maximum that may not be extended" in md.summary
    il = {i.id: i for i in judge(facts("us-il", minutes=31), AFTER).items}["within_limit"]
    assert il.outcome is Outcome.FAIL and "hard maximum" not in il.summary


def test_illinois_asks_staff_to_confirm_the_two_feet() -> None:
    """monitoring.staff_within_ft (us-il, 003 App. B IL): no sensor measures it."""
    watched = {i.id: i for i in judge(facts("us-il"), AFTER).items}["watched"]
    assert watched.outcome is Outcome.PASS and watched.evidence["staff_within_ft"] == 2
    assert "within 2 ft" in watched.summary
    ny = {i.id: i for i in judge(facts("us-ny"), AFTER).items}["watched"]
    assert ny.evidence["staff_within_ft"] is None and "ft" not in ny.summary


def test_environment_outside_the_limits_fails_with_the_extremes() -> None:
    hot = [replace(r, temperature_c=29.5) if i == 3 else r for i, r in enumerate(readings(480))]
    item = judge(facts(readings=hot), AFTER).item("environment")
    assert item.outcome is Outcome.FAIL
    assert item.evidence["temperature_c"]["max"] == 29.5
    assert item.evidence["temperature_c"]["outside"] == 1


def test_parent_notification_pending_overdue_and_late() -> None:
    unnotified = facts(record=full_record("S001", None))
    same_day = datetime.combine(MONDAY, time(14, 0), ZONE).astimezone(UTC)
    assert outcomes(unnotified, same_day)["parents_notified"] is Outcome.PENDING
    assert outcomes(unnotified, AFTER)["parents_notified"] is Outcome.FAIL
    late = datetime.combine(MONDAY, time(17, 0), ZONE).astimezone(UTC)
    item = judge(facts(record=full_record("S001", late)), AFTER).item("parents_notified")
    assert item.outcome is Outcome.FAIL and "after the deadline" in item.summary
    # North Colonie gives one school day (004 I.C): the next afternoon is in time.
    nc = facts("us-ny-north-colonie", record=full_record("S001", late), minutes=8)
    assert outcomes(nc)["parents_notified"] is Outcome.PASS


def test_an_incomplete_record_is_pending_until_the_end_of_the_school_day() -> None:
    partial = facts(record=full_record("S001", START, behavior_after=""))
    same_day = datetime.combine(MONDAY, time(14, 0), ZONE).astimezone(UTC)
    assert outcomes(partial, same_day)["record_complete"] is Outcome.PENDING
    item = judge(partial, AFTER).item("record_complete")
    assert item.outcome is Outcome.FAIL and item.evidence["missing"] == ["behavior_after"]


def test_an_open_episode_is_pending() -> None:
    v = judge(facts(ended_at=None), START + timedelta(minutes=5))
    assert v.outcome is Outcome.PENDING and v.duration_s is None


# ------------------------------------------------------------------ from the database


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    yield engine
    engine.dispose()


def test_verdict_from_the_database(engine: Engine) -> None:
    """Telemetry, events, an acknowledged alert and the record, read back and judged."""
    from compliance_world import episode_messages

    end = START + timedelta(minutes=5)
    messages: list[wire.Message] = episode_messages("s", "r", "s.r.e1", START, end, 1)
    messages += [
        telemetry("s", "r", START + timedelta(seconds=s), 10 + s, episode_id="s.r.e1")
        for s in range(0, 301, 10)
    ]
    messages.append(event_message("s", "r", START + timedelta(seconds=40), 500, "staff_checkin",
                                  by="u1", episode_id="s.r.e1"))  # fmt: skip
    store = Store(engine)
    store.write_batch([(m, end) for m in messages])
    condition = rules.Condition(
        wire.AlertType.TEMPERATURE_OUT_OF_RANGE, wire.Severity.WARNING, "hot", "s.r.e1"
    )
    owned = frozenset({condition.type})
    raised = rules.reconcile({}, "s", "r", [condition], owned, START + timedelta(seconds=30))
    store.write_batch([], raised)
    record = full_record("S001", START + timedelta(minutes=10))
    incidents.save(engine, "s.r.e1", record, "u-teacher", 0, lambda: end)

    v = db_verdicts.verdict(engine, "s.r.e1", config(), now=AFTER)
    assert v.outcome is Outcome.PASS, [(i.id, i.summary) for i in v.items]
    assert v.item("door_unlocked").evidence["readings"] == 31
    assert v.student_ref == "S001" and v.profile == "us-mn"
    db_verdicts.keep(engine, [v])
    assert db_verdicts.kept(engine, "s.r.e1") == v
    since = START - timedelta(days=1)
    assert db_verdicts.refresh(engine, config(), AFTER, since) == []  # final, record unchanged
    later = AFTER + timedelta(hours=1)
    incidents.save(engine, "s.r.e1", full_record("S002", START), "u-head", 1, lambda: later)
    (again,) = db_verdicts.refresh(engine, config(), later + timedelta(minutes=1), since)
    assert again.student_ref == "S002" and db_verdicts.kept(engine, "s.r.e1") == again
    with pytest.raises(db_verdicts.UnknownEpisodeError):
        db_verdicts.verdict(engine, "nope", config())
