"""A seeded school day of ordinary use, with real incidents injected (issue 13).

One job: build a :class:`Scenario` the engine plays, and the record of what was
put in it (:class:`SchoolDay`, day_record.py): the calm episodes with their noise
(calm.py), and each incident with the alerts it must raise and the window each may be
raised in (incidents.py), then the paperwork nobody does (paperwork.py). This module
plans the day: which room gets which incident, and when each use comes.
:mod:`roomwatch.simulation.truth` holds the alerts against that record.

Every number an incident is judged by comes from the room's profile (limits,
warning share, checkpoints, lapse, environment ranges) and from the simulated
room's timing (sample and telemetry intervals, occupancy hold, empty debounce),
never from minutes written here. The same seed gives the same day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import StudentBand, load_profile
from roomwatch.core.wire import AlertType
from roomwatch.simulation.calm import calm_episode
from roomwatch.simulation.day_record import CalmEpisode, Incident, SchoolDay, Timing, room_timing
from roomwatch.simulation.day_room import RoomDay
from roomwatch.simulation.incidents import INCIDENT_KINDS, can_raise, incident, preference
from roomwatch.simulation.paperwork import paperwork
from roomwatch.simulation.scenario import Room, Scenario

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
#: Nobody can start the next episode before the last one is confirmed over, plus this.
GAP_MIN_S = 30.0
GAP_MAX_S = 3 * 60.0
FIRST_AT_S = 30

RoomProfile = tuple[str, StudentBand | None]
#: One item written from time 0: its length (until the room is free again), the scratch
#: room holding its steps, and its record.
_Piece = tuple[float, RoomDay, CalmEpisode | Incident]


def parse_room_profile(text: str) -> RoomProfile:
    """``us-mi`` or ``us-mi:elementary`` (a profile id, and the student band)."""
    profile_id, _, band = text.partition(":")
    return profile_id, StudentBand(band) if band else None


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
    timing = room_timing()
    plan = _rooms(rooms, profiles)
    for room in plan:
        room.items = ["calm"] * calm_per_room
    skipped = _assign(plan, rng)
    incidents: list[Incident] = []
    calm: list[CalmEpisode] = []
    end = 0.0
    for room in plan:
        t = _lay_out(room, rng, timing, hours, incidents, calm)
        end = max(end, t + GAP_MIN_S)
    scenario = Scenario(
        duration_s=round(end),
        rooms=[r.spec for r in plan],
        steps=sorted((s for r in plan for s in r.steps), key=lambda s: s.at),
        faults=sorted((f for r in plan for f in r.faults), key=lambda f: f.at),
    )
    profile_of = {r.id: r.profile for r in plan}
    late = paperwork(profile_of, calm, incidents, scenario.duration_s, timing)
    return SchoolDay(seed, scenario, tuple(incidents), tuple(calm), tuple(skipped), late)


def _rooms(count: int, profiles: Sequence[RoomProfile]) -> list[RoomDay]:
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
        rooms.append(RoomDay(spec, profile, WatchRules.from_profile(profile, band)))
    return rooms


def _assign(plan: list[RoomDay], rng: random.Random) -> list[str]:
    """Give each incident kind to a room that can raise it; the kinds none can."""
    skipped = []
    for kind in INCIDENT_KINDS:
        able = [r for r in plan if can_raise(r, kind)]
        if not able:
            skipped.append(kind.value)
            continue
        best = min(preference(r, kind) for r in able)
        able = [r for r in able if preference(r, kind) == best]
        # The least busy of the fitting rooms, ties broken by the seed.
        fewest = min(len(r.items) for r in able)
        rng.choice([r for r in able if len(r.items) == fewest]).items.append(kind)
    return skipped


def _lay_out(
    room: RoomDay,
    rng: random.Random,
    timing: Timing,
    hours: float | None,
    incidents: list[Incident],
    calm: list[CalmEpisode],
) -> float:
    """Write ``room``'s items one after another, a gap apart, adding their records to
    ``incidents`` and ``calm``; when the last one is over."""
    rng.shuffle(room.items)
    pieces = [_piece(room, item, rng, timing) for item in room.items]
    gaps = _gaps(pieces, rng, hours)
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
    return t


def _gaps(pieces: list[_Piece], rng: random.Random, hours: float | None) -> list[int]:
    """The free time before each piece: a few minutes, or spread over ``hours``."""
    gaps = [rng.randint(int(GAP_MIN_S), int(GAP_MAX_S)) for _ in pieces]
    gaps[0] = FIRST_AT_S + rng.randint(0, int(GAP_MAX_S))
    spare = (hours or 0) * 3600 - sum(p[0] for p in pieces) - sum(gaps)
    if spare > 0:  # a longer day: the free time between uses, spread at random
        weights = [rng.random() for _ in gaps]
        gaps = [g + round(spare * w / sum(weights)) for g, w in zip(gaps, weights, strict=True)]
    return gaps


def _piece(room: RoomDay, item: AlertType | str, rng: random.Random, timing: Timing) -> _Piece:
    """One item written from time 0 into a scratch copy of ``room``: its length (until the
    room is free again), its steps and its record."""
    scratch = RoomDay(room.spec, room.profile, room.rules)
    if isinstance(item, AlertType):
        free, record = incident(scratch, item, 0.0, rng, timing)
        return free, scratch, record
    free, calm = calm_episode(scratch, 5.0, rng, timing)  # 5 s for a button press before it
    return free, scratch, calm


def _shift(record: Incident, by: float) -> Incident:
    expects = tuple(
        replace(e, earliest_s=e.earliest_s + by, deadline_s=e.deadline_s + by)
        for e in record.expects
    )
    episode = record.episode and (record.episode[0] + by, record.episode[1] + by)
    return replace(
        record,
        at_s=record.at_s + by,
        until_s=record.until_s + by,
        expects=expects,
        episode=episode,
    )
