"""A generated school day of ordinary use (issue 13), played on the real agent, embedded
broker and collector in virtual time: every injected incident alerts within its deadline,
no critical alert without an incident, and every unexplained warning named here."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from roomwatch.cli.main import main
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import StudentBand, load_profile
from roomwatch.core.wire import AlertType, Severity
from roomwatch.simulation.day_record import SchoolDay
from roomwatch.simulation.engine import simulate
from roomwatch.simulation.incidents import INCIDENT_KINDS
from roomwatch.simulation.report import Alert, Episode, Result
from roomwatch.simulation.school_day import generate, parse_room_profile
from roomwatch.simulation.truth import DayTruth, judge_day

SEEDS = (1, 2, 3)
#: CI's days: four rooms (default, us-ny, us-mi elementary, us-ma), every incident, and
#: 3 calm episodes per room (12 a day, 36 over the seeds) instead of the CLI's 8, so a
#: day is about an hour of school, not two (docs/simulation.md gives the cost).
CI_ROOMS = 4
CI_CALM = 3

#: Unexplained warnings the days are allowed, each with why (seed -> (room, type) -> why).
#: The goal is none; an entry here is a known false alarm with an issue to fix it.
KNOWN_WARNINGS: dict[int, dict[tuple[str, str], str]] = {}


@pytest.fixture(scope="module")
def days() -> dict[int, tuple[SchoolDay, DayTruth]]:
    """Each day played once, for the three checks on it. One after the other: the
    collector's start-up (its migrations) is not made for two in one process at once."""
    played = {}
    for seed in SEEDS:
        day = generate(seed, CI_ROOMS, CI_CALM)
        played[seed] = (day, judge_day(day, simulate(day.scenario)))
    return played


def _trace(truth: DayTruth, alerts: list[Alert]) -> str:
    return "\n".join(
        f"  {a.room} at {a.raised_s:g} s: {a.severity} {a.type}"
        + (f" [{a.subject}]" if a.subject else "")
        + ": "
        + next(u.context for u in truth.unexplained if u.alert is a)
        for a in alerts
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_every_incident_alerts_within_its_deadline(
    days: dict[int, tuple[SchoolDay, DayTruth]], seed: int
) -> None:
    day, truth = days[seed]
    assert {i.kind for i in day.incidents} == set(INCIDENT_KINDS)
    missed = [
        f"{m.incident.room}: {m.expected.type.value} between {m.expected.earliest_s:g} and "
        f"{m.expected.deadline_s:g} s ({m.expected.why}) for {m.incident.what}"
        for m in truth.missed
    ]
    assert not missed, "\n".join(missed)


@pytest.mark.parametrize("seed", SEEDS)
def test_no_critical_alert_without_an_incident(
    days: dict[int, tuple[SchoolDay, DayTruth]], seed: int
) -> None:
    _, truth = days[seed]
    critical = [u.alert for u in truth.unexplained_of(Severity.CRITICAL)]
    if critical:
        pytest.fail("critical alerts no incident explains:\n" + _trace(truth, critical))


@pytest.mark.parametrize("seed", SEEDS)
def test_every_unexplained_warning_is_known(
    days: dict[int, tuple[SchoolDay, DayTruth]], seed: int
) -> None:
    _, truth = days[seed]
    known = KNOWN_WARNINGS.get(seed, {})
    warnings = [u.alert for u in truth.unexplained if u.alert.severity != Severity.CRITICAL]
    unknown = [a for a in warnings if (a.room, a.type) not in known]
    if unknown:
        pytest.fail("unexplained warnings:\n" + _trace(truth, unknown))
    stale = set(known) - {(a.room, a.type) for a in warnings}
    assert not stale, f"listed as known but no longer raised: {stale}"


@pytest.mark.parametrize("seed", SEEDS)
def test_every_use_is_recorded_as_one_episode_from_entry_to_exit(
    days: dict[int, tuple[SchoolDay, DayTruth]], seed: int
) -> None:
    """The records, not only the pager: the end is the exit, never the debounce's expiry."""
    day, truth = days[seed]
    assert truth.episodes_true > len(day.calm)
    assert not truth.wrong_episodes and not truth.extra_episodes, (
        truth.wrong_episodes,
        truth.extra_episodes,
    )


def test_a_day_of_paperwork_rules_is_true() -> None:
    """Alberta (parents told at once) and Illinois (a use within 3 h of the last needs a
    written evaluation): nobody does the paperwork in a generated day, so each use must
    raise its deadline alert at the collector's next check, and nothing else."""
    profiles = [parse_room_profile("ca-ab"), parse_room_profile("us-il")]
    day = generate(21, rooms=2, calm_per_room=2, profiles=profiles)
    truth = judge_day(day, simulate(day.scenario))
    assert {p.kind for p in day.paperwork} == {
        AlertType.PARENT_NOTIFICATION_OVERDUE,
        AlertType.FREQUENT_USE,
    }
    assert not truth.missed, truth.missed
    assert not truth.unexplained, [(u.alert, u.context) for u in truth.unexplained]
    assert truth.clean


def test_paperwork_windows_come_from_the_profiles() -> None:
    profiles = [parse_room_profile("ca-ab"), parse_room_profile("us-il")]
    day = generate(21, rooms=2, calm_per_room=2, profiles=profiles)
    grace_s = load_profile("ca-ab").parent_notification.immediate_grace_min * 60
    starts = sorted(
        [(c.room, c.start_s) for c in day.calm]
        + [(i.room, i.episode[0]) for i in day.incidents if i.episode]
    )
    told = sorted(
        (p.room, p.at_s - grace_s)
        for p in day.paperwork
        if p.kind is AlertType.PARENT_NOTIFICATION_OVERDUE
    )
    assert told == [s for s in starts if s[0] == "room-101"]
    repeats = [p.at_s for p in day.paperwork if p.kind is AlertType.FREQUENT_USE]
    il = [t for room, t in starts if room == "room-102"]
    assert repeats == il[1:]  # every use but the first is within 3 h of the one before


# ------------------------------------------------------------- the generator


def test_the_same_seed_gives_the_same_day() -> None:
    assert generate(11) == generate(11)


def test_different_seeds_give_different_days() -> None:
    first, second = generate(11), generate(12)
    assert first.scenario.steps != second.scenario.steps
    assert first.incidents != second.incidents


def test_a_day_has_the_calm_episodes_asked_for_within_every_time_rule() -> None:
    day = generate(5, rooms=5, calm_per_room=8)
    assert len(day.calm) == 40 and not day.skipped
    # PIR + door, and PIR + door + mmWave: both sensor sets in one day.
    assert [r.presence for r in day.scenario.rooms] == [False, True, False, True, False]
    for calm in day.calm:
        room = day.scenario.room(calm.room)
        rules = WatchRules.from_profile(load_profile(room.profile), room.student_band)
        stay = calm.exit_s - calm.start_s
        assert 60 <= stay <= 11 * 60 + 5  # 5 s more when staff open it with the button
        for due in [rules.warning_s, *(c.first_s for c in rules.checkpoints)]:
            assert due is None or stay < due, (calm, due)
    endings = {c.ending.removesuffix(", then the button") for c in day.calm}
    assert endings == {"together", "adult follows", "door first"}
    assert any(c.ending.endswith("the button") for c in day.calm)


def test_windows_come_from_the_profile() -> None:
    """The overtime episode in the default room: warning at 80 % of 15 min, limit at 15."""
    day = generate(5, rooms=4)
    overtime = next(i for i in day.incidents if i.kind is AlertType.TIME_LIMIT_EXCEEDED)
    room = day.scenario.room(overtime.room)
    profile = load_profile(room.profile)
    limit_s = (profile.time_limit.minutes_for(room.student_band) or 0) * 60
    due = {e.type: e.earliest_s - overtime.at_s for e in overtime.expects}
    assert due[AlertType.TIME_LIMIT_EXCEEDED] == limit_s
    assert due[AlertType.TIME_LIMIT_WARNING] == limit_s * profile.time_limit.warning_fraction


def test_one_room_cannot_raise_everything() -> None:
    """The default profile forbids no seclusion and has no checkpoint: said, not faked."""
    day = generate(5, rooms=1, calm_per_room=1)
    assert set(day.skipped) == {"checkpoint_due", "seclusion_prohibited"}


# ------------------------------------------------------------------- truth


def _alert(type_: str, room: str, at: float, severity: str = "critical") -> Alert:
    return Alert(type_, severity, room, None, at, None)


def test_an_alert_is_explained_only_within_its_window() -> None:
    day = generate(5, rooms=4, calm_per_room=1)
    lock = next(i for i in day.incidents if i.kind is AlertType.DOOR_LOCKED_WHILE_OCCUPIED)
    (expected,) = lock.expects
    kind = expected.type.value
    on_time = Result(alerts=[_alert(kind, lock.room, expected.deadline_s)])
    truth = judge_day(day, on_time)
    assert len(truth.by_type[kind].true) == 1 and not truth.by_type[kind].missed
    late = Result(alerts=[_alert(kind, lock.room, expected.deadline_s + 1)])
    truth = judge_day(day, late)
    assert [m.expected for m in truth.by_type[kind].missed] == [expected]
    assert [u.alert.raised_s for u in truth.by_type[kind].unexplained] == [expected.deadline_s + 1]
    elsewhere = Result(alerts=[_alert(kind, "room-999", expected.earliest_s)])
    assert judge_day(day, elsewhere).by_type[kind].unexplained


def test_an_episode_recorded_past_the_exit_is_wrong() -> None:
    day = generate(5, rooms=1, calm_per_room=1, profiles=[parse_room_profile("us-ny")])
    (calm,) = day.calm
    uses = [(calm.start_s, calm.exit_s)] + [i.episode for i in day.incidents if i.episode]

    def recorded(late_s: float) -> Result:
        return Result(
            episodes=[
                Episode("room-101", f"e{n}", a, b + late_s, b + late_s - a)
                for n, (a, b) in enumerate(uses)
            ]
        )

    assert judge_day(day, recorded(0)).wrong_episodes == []
    inflated = judge_day(day, recorded(90))  # the debounce's 90 s: the old defect
    assert len(inflated.wrong_episodes) == len(uses) and not inflated.clean
    assert judge_day(day, Result()).episodes_true == 0


def test_the_command_reports_a_day() -> None:
    """One default room, one calm episode and every incident it can raise: clean, exit 0."""
    args = ["simulate", "--school-day", "--seed", "3", "--rooms", "1", "--episodes", "1"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "School day, seed 3" in out.output
    assert "Every incident alerted in time, no alert unexplained, every episode true." in out.output
    body = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert body["clean"] is True and body["not_injected"] == [
        "checkpoint_due",
        "seclusion_prohibited",
    ]
    assert body["by_type"]["door_locked_while_occupied"]["true"] == 1
    both = CliRunner().invoke(main, ["simulate", "x.yaml", "--school-day"])
    assert both.exit_code == 2 and "not both" in both.output
    unknown = CliRunner().invoke(main, ["simulate", "--school-day", "--profile", "us-xx"])
    assert unknown.exit_code == 2 and "unknown policy profile(s) us-xx" in unknown.output


def test_the_rooms_profiles_can_be_chosen() -> None:
    """How a district tries its own rules: Oregon's 30 min and 15-min authorizations."""
    day = generate(5, rooms=2, calm_per_room=1, profiles=[parse_room_profile("us-or")])
    assert [r.profile for r in day.scenario.rooms] == ["us-or", "us-or"]
    overtime = next(i for i in day.incidents if i.kind is AlertType.TIME_LIMIT_EXCEEDED)
    limit = next(e for e in overtime.expects if e.type is AlertType.TIME_LIMIT_EXCEEDED)
    assert limit.earliest_s - overtime.at_s == 30 * 60
    assert parse_room_profile("us-mi:elementary") == ("us-mi", StudentBand.ELEMENTARY)
