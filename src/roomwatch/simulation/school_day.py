"""A seeded school day of ordinary use, with real incidents injected (issue 13).

One job: build a :class:`Scenario` the engine plays, and the record of what was
put in it (:class:`SchoolDay`): the calm episodes with their noise, and each
incident with the alerts it must raise and the window each may be raised in.
:mod:`roomwatch.simulation.truth` holds the alerts against that record.

Every number an incident is judged by comes from the room's profile (limits,
warning share, checkpoints, lapse, environment ranges) and from the simulated
room's timing (sample and telemetry intervals, occupancy hold, empty debounce),
never from minutes written here. The same seed gives the same day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from roomwatch.collector.config import ComplianceSettings
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.deadlines import (
    describe_notification_rule,
    notification_deadline,
    record_deadline,
)
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import PolicyProfile, StudentBand, load_profile
from roomwatch.core.room_view import SILENCE_INTERVALS
from roomwatch.core.wire import AlertType
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.simulation.engine import SCENARIO_START, STEP_S
from roomwatch.simulation.expect import clock
from roomwatch.simulation.room import ROOM_TEMPLATE
from roomwatch.simulation.scenario import (
    Button,
    Fault,
    FaultKind,
    Inputs,
    Room,
    Scenario,
    Sensor,
    Step,
)

#: The rooms of a day, in order (``rooms=N`` takes the first N, then starts over): the
#: default profile, New York (a checkpoint at the limit), Michigan elementary (15 min),
#: Massachusetts (seclusion prohibited), Connecticut (a checkpoint well before the limit).
ROOM_PROFILES: tuple[tuple[str, StudentBand | None], ...] = (
    ("default", None),
    ("us-ny", None),
    ("us-mi", StudentBand.ELEMENTARY),
    ("us-ma", None),
    ("us-ct", None),
)
SITE = "school"
#: The room at rest, as the simulator starts it (simulation/room.py).
REST = {"temperature_c": 21.0, "lux": 320.0, "co2_ppm": 600.0}
CALM_MIN_S = 60.0
CALM_MAX_S = 11 * 60.0
#: Nobody can start the next episode before the last one is confirmed over, plus this.
GAP_MIN_S = 30.0
GAP_MAX_S = 3 * 60.0
FIRST_AT_S = 30


@dataclass(frozen=True)
class Expected:
    """An alert an incident must raise: ``type`` in ``room``, raised within [earliest,
    deadline]. ``why`` says where the window comes from."""

    type: AlertType
    earliest_s: float
    deadline_s: float
    why: str


@dataclass(frozen=True)
class Incident:
    kind: AlertType  # the alert type it was injected for
    room: str
    at_s: float  # the trigger
    until_s: float  # when it is over (the room is back to ordinary use)
    what: str
    expects: tuple[Expected, ...]
    episode: tuple[float, float] | None = None  # the episode it happens in: entry, exit


@dataclass(frozen=True)
class CalmEpisode:
    room: str
    start_s: float
    exit_s: float  # when the student left
    ending: str
    noise: tuple[str, ...]


@dataclass(frozen=True)
class SchoolDay:
    seed: int
    scenario: Scenario
    incidents: tuple[Incident, ...]
    calm: tuple[CalmEpisode, ...]
    skipped: tuple[str, ...] = ()  # incident kinds no room of this day can raise
    #: What the rules ask of staff after each use, which nobody does in a generated day
    #: (no record is filled in, no parent told): each is an alert that must come, on time.
    paperwork: tuple[Incident, ...] = ()

    def calm_at(self, room: str, at_s: float) -> CalmEpisode | None:
        """The calm episode of ``room`` that ``at_s`` falls in (up to its confirmed end)."""
        for c in self.calm:
            if c.room == room and c.start_s <= at_s <= c.exit_s + settle_s():
                return c
        return None


@dataclass(frozen=True)
class Timing:
    """The simulated room's timing (simulation/room.py), which the windows follow."""

    sample_s: float
    telemetry_s: float
    settle_s: float  # an exit is confirmed this long after it (occupancy hold + debounce)

    @property
    def edge_s(self) -> float:
        """Slack for a fact known at once (an input edge, a due time): one step, one sample."""
        return STEP_S + self.sample_s

    @property
    def reading_s(self) -> float:
        """Slack for a chip's reading: the next sample, then the next telemetry."""
        return self.edge_s + self.telemetry_s


def episode_slack_s() -> float:
    """How far a recorded start or end may be from the truth: one step and one sample."""
    return _timing().edge_s


def settle_s() -> float:
    """How long after an exit the simulated room confirms the end."""
    return _timing().settle_s


@cache
def _timing() -> Timing:
    t = parse_model(ROOM_TEMPLATE, AgentConfig, "simulated room").timing
    return Timing(
        t.sample_interval_s, t.telemetry_interval_s, t.occupancy_hold_s + t.empty_debounce_s
    )


@dataclass
class _Room:
    """One room's day as it is written: its steps, in time order, and a cursor."""

    spec: Room
    profile: PolicyProfile
    rules: WatchRules
    steps: list[Step] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    items: list[AlertType | str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec.id

    def press(self, at: float, note: str) -> None:
        self.steps.append(Step(at=at, room=self.id, press=Button.STAFF_BUTTON, note=note))

    def set(self, at: float, note: str | None = None, **inputs: Any) -> None:
        self.steps.append(Step(at=at, room=self.id, set=Inputs(**inputs), note=note))


# ------------------------------------------------------------------ plans
#
# A plan writes one item (a calm episode or an incident) into a room from ``t0`` and
# returns when the room is free again, with its record.


def _enter(room: _Room, t0: float, note: str) -> None:
    room.set(t0, note, staff_present=True, occupied=True, door_closed=True)


def _leave_together(room: _Room, at: float) -> float:
    room.set(
        at,
        "student and adult leave together",
        **REST,
        door_closed=False,
        occupied=False,
        staff_present=False,
    )
    return at


def _calm(room: _Room, t0: float, rng: random.Random, timing: Timing) -> tuple[float, CalmEpisode]:
    env = room.profile.environment
    longest = CALM_MAX_S
    # A calm episode stays clear of every time rule the profile has.
    for due in [room.rules.warning_s, *(c.first_s for c in room.rules.checkpoints)]:
        if due is not None:
            longest = min(longest, due - 2 * timing.telemetry_s)
    duration = rng.randint(int(CALM_MIN_S), int(longest))
    # Some episodes staff open with the button at the door, and close with it on the way
    # out (the second press ends the episode, at the student's exit).
    by_button = rng.random() < 1 / 3
    if by_button:
        room.press(t0 - 5, "staff open an episode with the button")
    _enter(room, t0, "a calm episode begins")
    start = t0 - 5 if by_button else t0
    noise: list[str] = []
    kinds = ["glance", "door", "dim", "warm", "still"]
    rng.shuffle(kinds)
    t = t0 + rng.randint(10, 30)
    end = t0 + duration - 15  # the last noise is over before the ending begins
    glance = round(room.rules.lapse_after_s * 0.4, 1)  # well under the lapse
    for kind in kinds[: rng.randint(1, len(kinds))]:
        if kind == "glance" and t + glance < end:
            room.set(t, "staff glance away", staff_present=False)
            room.set(t + glance, staff_present=True)
            noise.append(f"staff away {glance:g} s at {t - start:.0f} s")
            t += glance
        elif kind == "door" and t + 30 < end:
            room.set(t, "the door opened to talk", door_closed=False)
            room.set(t + 30, door_closed=True)
            noise.append(f"door open 30 s at {t - start:.0f} s")
            t += 30
        elif kind == "still" and t + 15 < end:
            # A child sitting still behind a closed door: no motion, well under the hold.
            room.set(t, "the student sits still", occupied=False)
            room.set(t + 15, occupied=True)
            noise.append(f"no motion 15 s at {t - start:.0f} s")
            t += 15
        elif kind == "dim" and env.lux_min is not None and t < end:
            lux = env.lux_min + 60
            room.set(t, "lights dimmed", lux=lux)
            noise.append(f"lights {lux:g} lux from {t - start:.0f} s")
        elif kind == "warm" and env.temperature_c.max is not None and t < end:
            warm = env.temperature_c.max - 2.5
            room.set(t, "the room warms", temperature_c=warm)
            noise.append(f"{warm:g} °C from {t - start:.0f} s")
        t += rng.randint(5, 40)
    at = t0 + duration
    ending = rng.choice(["together", "adult follows", "door first"])
    if ending == "together":
        exit_s = _leave_together(room, at)
    elif ending == "adult follows":
        room.set(
            at, "the student leaves; the adult follows", **REST, door_closed=False, occupied=False
        )
        room.set(at + 20, staff_present=False)
        exit_s = at
    else:
        room.set(at, "the door opens first", door_closed=False)
        exit_s = at + 5
        room.set(exit_s, "then both leave", **REST, occupied=False, staff_present=False)
    if by_button:
        room.press(exit_s + 10, "staff close the episode with the button")
        ending += ", then the button"
    record = CalmEpisode(room.id, start, exit_s, ending, tuple(noise))
    return exit_s + timing.settle_s, record


def _expect(type_: AlertType, at: float, slack: float, why: str) -> Expected:
    return Expected(type_, round(at, 3), round(at + slack, 3), why)


def _time_rules(room: _Room, t0: float, exit_s: float, timing: Timing) -> list[Expected]:
    """Every time alert an episode from ``t0`` to ``exit_s`` must raise: each rule due
    strictly before the exit (one due as the student leaves was not due while they were
    there, core/episode_watch.py)."""
    r, found = room.rules, []
    stay = exit_s - t0
    if r.warning_s is not None and r.warning_s < stay:
        found.append(
            _expect(
                AlertType.TIME_LIMIT_WARNING,
                t0 + r.warning_s,
                timing.edge_s,
                f"{room.profile.time_limit.warning_fraction:g} of the "
                f"{(r.limit_s or 0) / 60:g}-min limit",
            )
        )
    if r.limit_s is not None and r.limit_s < stay:
        found.append(
            _expect(
                AlertType.TIME_LIMIT_EXCEEDED,
                t0 + r.limit_s,
                timing.edge_s,
                f"the {r.limit_s / 60:g}-min limit",
            )
        )
    for c in r.checkpoints:
        for n in range(c.occurrences_until(stay, strict=True)):
            found.append(
                _expect(
                    AlertType.CHECKPOINT_DUE,
                    t0 + c.at_s(n),
                    timing.edge_s,
                    f"checkpoint {c.id} #{n + 1} at {c.at_s(n) / 60:g} min",
                )
            )
    return found


def _long_episode(
    room: _Room, t0: float, past_s: float, kind: AlertType, what: str, timing: Timing
) -> tuple[float, Incident]:
    _enter(room, t0, what)
    exit_s = _leave_together(room, t0 + past_s)
    expects = _time_rules(room, t0, exit_s, timing)
    return exit_s + timing.settle_s, Incident(
        kind, room.id, t0, exit_s, what, tuple(expects), (t0, exit_s)
    )


def _incident(
    room: _Room, kind: AlertType, t0: float, rng: random.Random, timing: Timing
) -> tuple[float, Incident]:
    r, env = room.rules, room.profile.environment
    at = t0 + rng.randint(40, 80)  # the trigger (a minute into the episode, if any)
    length = 150.0
    expects: list[Expected] = []
    if kind is AlertType.TIME_LIMIT_EXCEEDED:
        assert r.limit_s is not None
        return _long_episode(
            room,
            t0,
            r.limit_s + rng.randint(30, 120),
            kind,
            f"an episode past its {r.limit_s / 60:g}-min limit",
            timing,
        )
    if kind is AlertType.CHECKPOINT_DUE:
        first = min(c.first_s for c in r.checkpoints)
        return _long_episode(
            room,
            t0,
            first + rng.randint(30, 120),
            kind,
            f"an episode past its first checkpoint ({first / 60:g} min)",
            timing,
        )
    # A failing part may fail in an empty room or during an episode; the rest happen in one.
    in_episode = kind not in (AlertType.AGENT_OFFLINE, AlertType.SENSOR_FAULT) or rng.random() < 0.5
    if in_episode:
        _enter(room, t0, f"an episode with an incident: {kind.value}")
    where = "during an episode" if in_episode else "in an empty room"
    what = ""
    if kind is AlertType.AGENT_OFFLINE:
        down = 120.0
        room.faults.append(
            Fault(
                at=at,
                kind=FaultKind.AGENT_CRASH,
                duration_s=down,
                room=room.id,
                note="the agent's power is cut",
            )
        )
        length = at - t0 + down + 60  # the episode goes on a minute after the agent is back
        what = f"the agent is down for {down:g} s, {where}"
        silence = SILENCE_INTERVALS * timing.telemetry_s
        expects.append(
            _expect(
                kind,
                at,
                silence + timing.edge_s,
                "its last will, or silence for 2.5 telemetry intervals",
            )
        )
    elif kind is AlertType.DOOR_LOCKED_WHILE_OCCUPIED:
        room.set(at, "someone throws the bolt", door_locked=True)
        room.set(at + 15, door_locked=False)
        what = "the bolt thrown for 15 s"
        expects.append(_expect(kind, at, timing.edge_s, "at once (the lock edge)"))
    elif kind is AlertType.MONITORING_LAPSE:
        away = 2 * r.lapse_after_s
        room.set(at, "staff called away, door closed", staff_present=False)
        room.set(at + away, staff_present=True)
        what = f"staff away {away:g} s with the door closed"
        expects.append(
            _expect(
                kind,
                at + r.lapse_after_s,
                timing.edge_s,
                f"away longer than lapse_after_s ({r.lapse_after_s:g} s)",
            )
        )
    elif kind is AlertType.SECLUSION_PROHIBITED:
        away = 3 * r.lapse_after_s
        room.set(at, "staff leave and the door stays closed", staff_present=False)
        room.set(at + away, staff_present=True)
        what = f"door closed with no staff for {away:g} s"
        expects.append(
            _expect(
                kind,
                at + r.lapse_after_s,
                timing.edge_s,
                f"seclusion_allowed: false, away longer than lapse_after_s ({r.lapse_after_s:g} s)",
            )
        )
        expects.append(
            _expect(
                AlertType.MONITORING_LAPSE,
                at + r.lapse_after_s,
                timing.edge_s,
                f"away longer than lapse_after_s ({r.lapse_after_s:g} s)",
            )
        )
    elif kind is AlertType.TEMPERATURE_OUT_OF_RANGE:
        assert env.temperature_c.max is not None
        hot = env.temperature_c.max + 1.5
        room.set(at, "the heating runs away", temperature_c=hot)
        room.set(at + 90, temperature_c=REST["temperature_c"])
        what = f"{hot:g} °C for 90 s (max {env.temperature_c.max:g})"
        expects.append(_expect(kind, at, timing.reading_s, "the next sample and telemetry"))
    elif kind is AlertType.LIGHT_BELOW_MINIMUM:
        assert env.lux_min is not None
        dark = env.lux_min / 2
        room.set(at, "the lights go out", lux=dark)
        room.set(at + 90, lux=REST["lux"])
        what = f"{dark:g} lux for 90 s (min {env.lux_min:g})"
        expects.append(_expect(kind, at, timing.reading_s, "the next sample and telemetry"))
    elif kind is AlertType.VENTILATION_POOR:
        assert env.co2_max_ppm is not None
        stale = env.co2_max_ppm + 400
        room.set(at, "the ventilation stops", co2_ppm=stale)
        room.set(at + 90, co2_ppm=REST["co2_ppm"])
        what = f"CO2 {stale:g} ppm for 90 s (max {env.co2_max_ppm:g})"
        expects.append(_expect(kind, at, timing.reading_s, "the next sample and telemetry"))
    elif kind is AlertType.SENSOR_FAULT:
        # A chip the room has (the mmWave module only where it is fitted).
        sensor = rng.choice([x for x in Sensor if x is not Sensor.PRESENCE or room.spec.presence])
        room.faults.append(
            Fault(
                at=at,
                kind=FaultKind.SENSOR_FAULT,
                duration_s=90,
                room=room.id,
                sensor=sensor,
                note=f"the {sensor.value} chip stops answering",
            )
        )
        what = f"the {sensor.value} chip silent for 90 s, {where}"
        expects.append(_expect(kind, at, timing.edge_s, "the next sample"))
    if not in_episode:
        over = t0 + length
        return over + timing.settle_s, Incident(kind, room.id, at, over, what, tuple(expects))
    exit_s = _leave_together(room, t0 + length)
    return exit_s + timing.settle_s, Incident(
        kind, room.id, at, exit_s, what, tuple(expects), (t0, exit_s)
    )


# ------------------------------------------------------------- candidates


def _can(room: _Room, kind: AlertType) -> bool:
    """Whether ``room`` can raise ``kind`` in simulation."""
    p, r = room.profile, room.rules
    match kind:
        case AlertType.MONITORING_LAPSE:
            # Where seclusion is prohibited the same absence is seclusion_prohibited too.
            return r.monitoring and p.seclusion_allowed
        case AlertType.TIME_LIMIT_EXCEEDED:
            return r.limit_s is not None
        case AlertType.CHECKPOINT_DUE:
            return bool(r.checkpoints)
        case AlertType.SECLUSION_PROHIBITED:
            return not p.seclusion_allowed and r.monitoring
        case AlertType.TEMPERATURE_OUT_OF_RANGE:
            return p.environment.temperature_c.max is not None
        case AlertType.LIGHT_BELOW_MINIMUM:
            return p.environment.lux_min is not None
        case AlertType.VENTILATION_POOR:
            return p.environment.co2_max_ppm is not None
    return True


def _preference(room: _Room, kind: AlertType) -> int:
    """Lower is better: a checkpoint incident is clearest where it comes before the warning."""
    if kind is AlertType.CHECKPOINT_DUE:
        first = min(c.first_s for c in room.rules.checkpoints)
        return 0 if room.rules.warning_s is None or first < room.rules.warning_s else 1
    if kind is AlertType.TIME_LIMIT_EXCEEDED:
        return 0 if not room.rules.checkpoints else 1
    return 0


#: Every alert type a room can raise in simulation, one incident each.
INCIDENT_KINDS: tuple[AlertType, ...] = (
    AlertType.DOOR_LOCKED_WHILE_OCCUPIED,
    AlertType.MONITORING_LAPSE,
    AlertType.TIME_LIMIT_EXCEEDED,
    AlertType.CHECKPOINT_DUE,
    AlertType.SECLUSION_PROHIBITED,
    AlertType.TEMPERATURE_OUT_OF_RANGE,
    AlertType.LIGHT_BELOW_MINIMUM,
    AlertType.VENTILATION_POOR,
    AlertType.SENSOR_FAULT,
    AlertType.AGENT_OFFLINE,
)


RoomProfile = tuple[str, StudentBand | None]


def parse_room_profile(text: str) -> RoomProfile:
    """``us-mi`` or ``us-mi:elementary`` (a profile id, and the student band)."""
    profile_id, _, band = text.partition(":")
    return profile_id, StudentBand(band) if band else None


def _rooms(count: int, profiles: Sequence[RoomProfile]) -> list[_Room]:
    rooms = []
    for i in range(count):
        profile_id, band = profiles[i % len(profiles)]
        # Every second room also has an mmWave presence sensor (PIR + door + mmWave), so both
        # sensor sets of docs/alerts.md live through the day.
        spec = Room(
            id=f"room-{101 + i}",
            site=SITE,
            profile=profile_id,
            student_band=band,
            presence=i % 2 == 1,
        )
        profile = load_profile(profile_id)
        rooms.append(_Room(spec, profile, WatchRules.from_profile(profile, band)))
    return rooms


def _piece(
    room: _Room, item: AlertType | str, rng: random.Random, timing: Timing
) -> tuple[float, _Room, CalmEpisode | Incident]:
    """One item written from time 0 into a scratch copy of ``room``: its length (until the
    room is free again), its steps and its record."""
    scratch = _Room(room.spec, room.profile, room.rules)
    if isinstance(item, AlertType):
        free, record = _incident(scratch, item, 0.0, rng, timing)
        return free, scratch, record
    free, calm = _calm(scratch, 5.0, rng, timing)  # 5 s for a button press before it
    return free, scratch, calm


def _shift(incident: Incident, by: float) -> Incident:
    expects = tuple(
        replace(e, earliest_s=e.earliest_s + by, deadline_s=e.deadline_s + by)
        for e in incident.expects
    )
    episode = incident.episode and (incident.episode[0] + by, incident.episode[1] + by)
    return replace(
        incident,
        at_s=incident.at_s + by,
        until_s=incident.until_s + by,
        expects=expects,
        episode=episode,
    )


def generate(
    seed: int,
    rooms: int = 4,
    calm_per_room: int = 8,
    hours: float | None = None,
    profiles: Sequence[RoomProfile] = ROOM_PROFILES,
) -> SchoolDay:
    """The school day of ``seed``: ``rooms`` rooms, ``calm_per_room`` calm episodes in each,
    and one incident of every alert type some room of the day can raise. The uses follow
    one another a few minutes apart; ``hours`` spreads them over a day that long (a day
    is never shorter than its uses need). Room N has ``profiles[N]`` (starting over at the
    end of the list)."""
    if rooms < 1 or calm_per_room < 0 or not profiles:
        raise ValueError("a day needs a room, a profile, and no negative count of episodes")
    rng = random.Random(seed)  # noqa: S311 - a reproducible day, not a secret
    timing = _timing()
    plan = _rooms(rooms, profiles)
    for room in plan:
        room.items = ["calm"] * calm_per_room
    skipped = []
    for kind in INCIDENT_KINDS:
        able = [r for r in plan if _can(r, kind)]
        if not able:
            skipped.append(kind.value)
            continue
        best = min(_preference(r, kind) for r in able)
        able = [r for r in able if _preference(r, kind) == best]
        # The least busy of the fitting rooms, ties broken by the seed.
        fewest = min(len(r.items) for r in able)
        rng.choice([r for r in able if len(r.items) == fewest]).items.append(kind)
    incidents: list[Incident] = []
    calm: list[CalmEpisode] = []
    end = 0.0
    for room in plan:
        rng.shuffle(room.items)
        pieces = [_piece(room, item, rng, timing) for item in room.items]
        gaps = [rng.randint(int(GAP_MIN_S), int(GAP_MAX_S)) for _ in pieces]
        gaps[0] = FIRST_AT_S + rng.randint(0, int(GAP_MAX_S))
        spare = (hours or 0) * 3600 - sum(p[0] for p in pieces) - sum(gaps)
        if spare > 0:  # a longer day: the free time between uses, spread at random
            weights = [rng.random() for _ in gaps]
            gaps = [g + round(spare * w / sum(weights)) for g, w in zip(gaps, weights, strict=True)]
        t = 0.0
        for (length, scratch, record), gap in zip(pieces, gaps, strict=True):
            t += gap
            room.steps += [s.model_copy(update={"at": s.at + t}) for s in scratch.steps]
            room.faults += [f.model_copy(update={"at": f.at + t}) for f in scratch.faults]
            if isinstance(record, CalmEpisode):
                calm.append(replace(record, start_s=record.start_s + t, exit_s=record.exit_s + t))
            else:
                incidents.append(_shift(record, t))
            t += length
        end = max(end, t + GAP_MIN_S)
    scenario = Scenario(
        duration_s=round(end),
        rooms=[r.spec for r in plan],
        steps=sorted((s for r in plan for s in r.steps), key=lambda s: s.at),
        faults=sorted((f for r in plan for f in r.faults), key=lambda f: f.at),
    )
    paperwork = _paperwork(plan, calm, incidents, scenario.duration_s, timing)
    return SchoolDay(seed, scenario, tuple(incidents), tuple(calm), tuple(skipped), paperwork)


def _paperwork(
    plan: list[_Room],
    calm: list[CalmEpisode],
    incidents: list[Incident],
    day_s: float,
    timing: Timing,
) -> tuple[Incident, ...]:
    """The deadline alerts the day's uses must raise before it ends, since no staff do the
    paperwork: parents not told (the profile's deadline), the record not complete (the end
    of the school day), and a use within the profile's repeat window of the room's last
    one (Illinois: the written evaluation). Each is raised at the collector's next check."""
    calendar = SchoolCalendar()  # the simulation's (engine.Options): UTC, ends 15:30
    check_s = ComplianceSettings().check_every_s
    slack = check_s + timing.edge_s
    uses = sorted(
        [(c.room, c.start_s, c.exit_s) for c in calm]
        + [(i.room, *i.episode) for i in incidents if i.episode is not None]
    )
    profiles = {r.id: r.profile for r in plan}
    found: list[Incident] = []

    def due(room: str, kind: AlertType, at: datetime, what: str, why: str) -> None:
        at_s = (at - SCENARIO_START).total_seconds()
        if at_s + slack <= day_s:  # judged only when the day lasts past its window
            found.append(Incident(kind, room, at_s, at_s, what, (_expect(kind, at_s, slack, why),)))

    last_exit: dict[str, float] = {}
    for room, start_s, exit_s in uses:
        profile = profiles[room]
        start = SCENARIO_START + timedelta(seconds=start_s)
        rule = profile.parent_notification
        due(
            room,
            AlertType.PARENT_NOTIFICATION_OVERDUE,
            notification_deadline(rule, calendar, start),
            f"parents of the {clock(start_s)} episode not told",
            describe_notification_rule(rule),
        )
        due(
            room,
            AlertType.RECORD_INCOMPLETE,
            record_deadline(calendar, SCENARIO_START + timedelta(seconds=exit_s)),
            f"record of the {clock(start_s)} episode not filled in",
            "by the end of the school day",
        )
        window_h = profile.reporting.repeat_window_h
        if (
            window_h is not None
            and room in last_exit
            and start_s - last_exit[room] <= window_h * 3600
        ):
            due(
                room,
                AlertType.FREQUENT_USE,
                start,
                f"the {clock(start_s)} episode within {window_h:g} h of the last one",
                f"reporting.repeat_window_h ({window_h:g} h), at the next check",
            )
        last_exit[room] = exit_s
    return tuple(found)
