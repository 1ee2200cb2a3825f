"""The incidents of a generated school day (school_day.py): one script per alert type a
room can raise, each writing its trigger into the room and stating, beside it, the alert
it must raise and the window it may be raised in.

Each script states its trigger and its profile-derived window together, on purpose: a
reader checks an incident against its expectation in one place. Every number comes from
the room's profile and the simulated room's timing, never from minutes written here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from roomwatch.core.room_view import SILENCE_INTERVALS
from roomwatch.core.wire import AlertType
from roomwatch.simulation.day_record import Expected, Incident, Timing, expect
from roomwatch.simulation.day_room import REST, RoomDay, enter, leave_together
from roomwatch.simulation.scenario import Fault, FaultKind, Sensor

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
#: How long an incident's episode (or its empty room) lasts unless its script says.
LENGTH_S = 150.0
#: How long a bad reading lasts.
READING_S = 90
#: A failing part may fail in an empty room; the rest happen during an episode.
_PARTS = (AlertType.AGENT_OFFLINE, AlertType.SENSOR_FAULT)


@dataclass(frozen=True)
class Cue:
    """Where an incident's trigger falls: the start (``t0``), the trigger (``at``), and
    whether it is during an episode (``where`` says which)."""

    t0: float
    at: float
    where: str
    rng: random.Random
    timing: Timing


@dataclass(frozen=True)
class Script:
    """What a trigger did, the alerts it must raise, and how long the incident lasts."""

    what: str
    expects: tuple[Expected, ...]
    length: float = LENGTH_S


def incident(
    room: RoomDay, kind: AlertType, t0: float, rng: random.Random, timing: Timing
) -> tuple[float, Incident]:
    """The incident of ``kind`` written into ``room`` from ``t0``: when the room is free
    again, and its record."""
    at = t0 + rng.randint(40, 80)  # the trigger (a minute into the episode, if any)
    if kind in _LONG:
        return _LONG[kind](room, t0, rng, timing)
    in_episode = kind not in _PARTS or rng.random() < 0.5
    if in_episode:
        enter(room, t0, f"an episode with an incident: {kind.value}")
    where = "during an episode" if in_episode else "in an empty room"
    script = _TRIGGERS[kind](room, Cue(t0, at, where, rng, timing))
    if not in_episode:
        over = t0 + script.length
        return over + timing.settle_s, Incident(
            kind, room.id, at, over, script.what, script.expects
        )
    exit_s = leave_together(room, t0 + script.length)
    return exit_s + timing.settle_s, Incident(
        kind, room.id, at, exit_s, script.what, script.expects, (t0, exit_s)
    )


# ------------------------------------------------------------ time rules


def time_rules(room: RoomDay, t0: float, exit_s: float, timing: Timing) -> list[Expected]:
    """Every time alert an episode from ``t0`` to ``exit_s`` must raise: each rule due
    strictly before the exit (one due as the student leaves was not due while they were
    there, core/episode_watch.py)."""
    r, found = room.rules, []
    stay = exit_s - t0
    if r.warning_s is not None and r.warning_s < stay:
        share = room.profile.time_limit.warning_fraction
        why = f"{share:g} of the {(r.limit_s or 0) / 60:g}-min limit"
        found.append(expect(AlertType.TIME_LIMIT_WARNING, t0 + r.warning_s, timing.edge_s, why))
    if r.limit_s is not None and r.limit_s < stay:
        why = f"the {r.limit_s / 60:g}-min limit"
        found.append(expect(AlertType.TIME_LIMIT_EXCEEDED, t0 + r.limit_s, timing.edge_s, why))
    for c in r.checkpoints:
        for n in range(c.occurrences_until(stay, strict=True)):
            why = f"checkpoint {c.id} #{n + 1} at {c.at_s(n) / 60:g} min"
            found.append(expect(AlertType.CHECKPOINT_DUE, t0 + c.at_s(n), timing.edge_s, why))
    return found


def _long_episode(
    room: RoomDay, t0: float, past_s: float, kind: AlertType, what: str, timing: Timing
) -> tuple[float, Incident]:
    enter(room, t0, what)
    exit_s = leave_together(room, t0 + past_s)
    expects = time_rules(room, t0, exit_s, timing)
    return exit_s + timing.settle_s, Incident(
        kind, room.id, t0, exit_s, what, tuple(expects), (t0, exit_s)
    )


def _past_limit(
    room: RoomDay, t0: float, rng: random.Random, timing: Timing
) -> tuple[float, Incident]:
    limit = room.rules.limit_s
    assert limit is not None
    what = f"an episode past its {limit / 60:g}-min limit"
    past = limit + rng.randint(30, 120)
    return _long_episode(room, t0, past, AlertType.TIME_LIMIT_EXCEEDED, what, timing)


def _past_checkpoint(
    room: RoomDay, t0: float, rng: random.Random, timing: Timing
) -> tuple[float, Incident]:
    first = min(c.first_s for c in room.rules.checkpoints)
    what = f"an episode past its first checkpoint ({first / 60:g} min)"
    past = first + rng.randint(30, 120)
    return _long_episode(room, t0, past, AlertType.CHECKPOINT_DUE, what, timing)


_LONG: dict[AlertType, Callable[[RoomDay, float, random.Random, Timing], tuple[float, Incident]]]
_LONG = {AlertType.TIME_LIMIT_EXCEEDED: _past_limit, AlertType.CHECKPOINT_DUE: _past_checkpoint}


# -------------------------------------------------------------- triggers


def _agent_offline(room: RoomDay, cue: Cue) -> Script:
    down = 120.0
    note = "the agent's power is cut"
    room.faults.append(
        Fault(at=cue.at, kind=FaultKind.AGENT_CRASH, duration_s=down, room=room.id, note=note)
    )
    silence = SILENCE_INTERVALS * cue.timing.telemetry_s
    why = "its last will, or silence for 2.5 telemetry intervals"
    return Script(
        f"the agent is down for {down:g} s, {cue.where}",
        (expect(AlertType.AGENT_OFFLINE, cue.at, silence + cue.timing.edge_s, why),),
        # The episode goes on a minute after the agent is back.
        length=cue.at - cue.t0 + down + 60,
    )


def _sensor_fault(room: RoomDay, cue: Cue) -> Script:
    # A chip the room has (the mmWave module only where it is fitted).
    sensor = cue.rng.choice([x for x in Sensor if x is not Sensor.PRESENCE or room.spec.presence])
    room.faults.append(
        Fault(
            at=cue.at,
            kind=FaultKind.SENSOR_FAULT,
            duration_s=READING_S,
            room=room.id,
            sensor=sensor,
            note=f"the {sensor.value} chip stops answering",
        )
    )
    return Script(
        f"the {sensor.value} chip silent for {READING_S} s, {cue.where}",
        (expect(AlertType.SENSOR_FAULT, cue.at, cue.timing.edge_s, "the next sample"),),
    )


def _door_locked(room: RoomDay, cue: Cue) -> Script:
    room.set(cue.at, "someone throws the bolt", door_locked=True)
    room.set(cue.at + 15, door_locked=False)
    kind = AlertType.DOOR_LOCKED_WHILE_OCCUPIED
    return Script(
        "the bolt thrown for 15 s",
        (expect(kind, cue.at, cue.timing.edge_s, "at once (the lock edge)"),),
    )


def _staff_away(room: RoomDay, cue: Cue, lapses: int, note: str) -> tuple[float, Expected]:
    """Staff away for ``lapses`` times the lapse: how long, and the lapse it must raise."""
    lapse = room.rules.lapse_after_s
    away = lapses * lapse
    room.set(cue.at, note, staff_present=False)
    room.set(cue.at + away, staff_present=True)
    why = f"away longer than lapse_after_s ({lapse:g} s)"
    return away, expect(AlertType.MONITORING_LAPSE, cue.at + lapse, cue.timing.edge_s, why)


def _lapse(room: RoomDay, cue: Cue) -> Script:
    away, lapse = _staff_away(room, cue, 2, "staff called away, door closed")
    return Script(f"staff away {away:g} s with the door closed", (lapse,))


def _seclusion(room: RoomDay, cue: Cue) -> Script:
    away, lapse = _staff_away(room, cue, 3, "staff leave and the door stays closed")
    # Where seclusion is prohibited the same absence is a lapse too.
    prohibited = expect(
        AlertType.SECLUSION_PROHIBITED,
        cue.at + room.rules.lapse_after_s,
        cue.timing.edge_s,
        f"seclusion_allowed: false, {lapse.why}",
    )
    return Script(f"door closed with no staff for {away:g} s", (prohibited, lapse))


@dataclass(frozen=True)
class _BadReading:
    """A reading out of the profile's range: the input, the profile's limit, the bad
    value drawn from it, what happens, and how the record says it."""

    input: str
    limit: Callable[[RoomDay], float | None]
    bad: Callable[[float], float]
    note: str
    says: str  # formatted with the value, the limit and the duration


_READINGS: dict[AlertType, _BadReading] = {
    AlertType.TEMPERATURE_OUT_OF_RANGE: _BadReading(
        "temperature_c",
        lambda r: r.profile.environment.temperature_c.max,
        lambda top: top + 1.5,
        "the heating runs away",
        "{value:g} °C for {s} s (max {limit:g})",
    ),
    AlertType.LIGHT_BELOW_MINIMUM: _BadReading(
        "lux",
        lambda r: r.profile.environment.lux_min,
        lambda least: least / 2,
        "the lights go out",
        "{value:g} lux for {s} s (min {limit:g})",
    ),
    AlertType.VENTILATION_POOR: _BadReading(
        "co2_ppm",
        lambda r: r.profile.environment.co2_max_ppm,
        lambda most: most + 400,
        "the ventilation stops",
        "CO2 {value:g} ppm for {s} s (max {limit:g})",
    ),
}


def _bad_reading(kind: AlertType, room: RoomDay, cue: Cue) -> Script:
    """The reading of ``kind`` out of range for a while, then back at rest."""
    r = _READINGS[kind]
    limit = r.limit(room)
    assert limit is not None
    value = r.bad(limit)
    room.set(cue.at, r.note, **{r.input: value})
    room.set(cue.at + READING_S, **{r.input: REST[r.input]})
    what = r.says.format(value=value, limit=limit, s=READING_S)
    return Script(
        what, (expect(kind, cue.at, cue.timing.reading_s, "the next sample and telemetry"),)
    )


_TRIGGERS: dict[AlertType, Callable[[RoomDay, Cue], Script]] = {
    AlertType.AGENT_OFFLINE: _agent_offline,
    AlertType.SENSOR_FAULT: _sensor_fault,
    AlertType.DOOR_LOCKED_WHILE_OCCUPIED: _door_locked,
    AlertType.MONITORING_LAPSE: _lapse,
    AlertType.SECLUSION_PROHIBITED: _seclusion,
    **{kind: partial(_bad_reading, kind) for kind in _READINGS},
}


# ------------------------------------------------------------ candidates


def can_raise(room: RoomDay, kind: AlertType) -> bool:
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


def preference(room: RoomDay, kind: AlertType) -> int:
    """Lower is better: a checkpoint incident is clearest where it comes before the warning."""
    if kind is AlertType.CHECKPOINT_DUE:
        first = min(c.first_s for c in room.rules.checkpoints)
        return 0 if room.rules.warning_s is None or first < room.rules.warning_s else 1
    if kind is AlertType.TIME_LIMIT_EXCEEDED:
        return 0 if not room.rules.checkpoints else 1
    return 0
