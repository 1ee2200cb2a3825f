"""A calm episode of a generated school day (school_day.py): ordinary use with the noise
of a real room (a glance away, the door opened to talk, a child sitting still, dim lights,
a warm room), every bit of it well inside the profile's rules, so it must raise nothing.
"""

from __future__ import annotations

import random

from roomwatch.simulation.day_record import CalmEpisode, Timing
from roomwatch.simulation.day_room import REST, RoomDay, enter, leave_together

CALM_MIN_S = 60.0
CALM_MAX_S = 11 * 60.0

#: Noise that comes and goes: what happens, the input it clears for a while, for how
#: long (the glance: a share of the lapse, so well under it), and how the record says it.
_BRIEF: dict[str, tuple[str, str, float | None, str]] = {
    "glance": ("staff glance away", "staff_present", None, "staff away"),
    "door": ("the door opened to talk", "door_closed", 30, "door open"),
    # A child sitting still behind a closed door: no motion, well under the hold.
    "still": ("the student sits still", "occupied", 15, "no motion"),
}
GLANCE_SHARE = 0.4


def calm_episode(
    room: RoomDay, t0: float, rng: random.Random, timing: Timing
) -> tuple[float, CalmEpisode]:
    """A calm episode from ``t0``: when the room is free again, and its record."""
    duration = rng.randint(int(CALM_MIN_S), int(_longest(room, timing)))
    # Some episodes staff open with the button at the door, and close with it on the way
    # out (the second press ends the episode, at the student's exit).
    by_button = rng.random() < 1 / 3
    if by_button:
        room.press(t0 - 5, "staff open an episode with the button")
    enter(room, t0, "a calm episode begins")
    start = t0 - 5 if by_button else t0
    # The last noise is over before the ending begins.
    noise = _noise(room, t0, start, t0 + duration - 15, rng)
    ending, exit_s = _ending(room, t0 + duration, rng)
    if by_button:
        room.press(exit_s + 10, "staff close the episode with the button")
        ending += ", then the button"
    record = CalmEpisode(room.id, start, exit_s, ending, tuple(noise))
    return exit_s + timing.settle_s, record


def _longest(room: RoomDay, timing: Timing) -> float:
    """The longest calm episode: clear of every time rule the profile has."""
    longest = CALM_MAX_S
    for due in [room.rules.warning_s, *(c.first_s for c in room.rules.checkpoints)]:
        if due is not None:
            longest = min(longest, due - 2 * timing.telemetry_s)
    return longest


def _noise(room: RoomDay, t0: float, start: float, end: float, rng: random.Random) -> list[str]:
    """A few kinds of noise, in a random order, from just after ``t0`` until ``end``."""
    env = room.profile.environment
    noise: list[str] = []
    kinds = ["glance", "door", "dim", "warm", "still"]
    rng.shuffle(kinds)
    t = t0 + rng.randint(10, 30)
    glance = round(room.rules.lapse_after_s * GLANCE_SHARE, 1)
    for kind in kinds[: rng.randint(1, len(kinds))]:
        if kind in _BRIEF:
            note, input_, lasts, says = _BRIEF[kind]
            lasts = glance if lasts is None else lasts
            if t + lasts < end:
                room.set(t, note, **{input_: False})
                room.set(t + lasts, **{input_: True})
                noise.append(f"{says} {lasts:g} s at {t - start:.0f} s")
                t += lasts
        elif kind == "dim" and env.lux_min is not None and t < end:
            lux = env.lux_min + 60
            room.set(t, "lights dimmed", lux=lux)
            noise.append(f"lights {lux:g} lux from {t - start:.0f} s")
        elif kind == "warm" and env.temperature_c.max is not None and t < end:
            warm = env.temperature_c.max - 2.5
            room.set(t, "the room warms", temperature_c=warm)
            noise.append(f"{warm:g} °C from {t - start:.0f} s")
        t += rng.randint(5, 40)
    return noise


def _ending(room: RoomDay, at: float, rng: random.Random) -> tuple[str, float]:
    """One of the ways an episode ends, from ``at``: how, and the student's exit."""
    ending = rng.choice(["together", "adult follows", "door first"])
    if ending == "together":
        return ending, leave_together(room, at)
    if ending == "adult follows":
        room.set(
            at, "the student leaves; the adult follows", **REST, door_closed=False, occupied=False
        )
        room.set(at + 20, staff_present=False)
        return ending, at
    room.set(at, "the door opens first", door_closed=False)
    exit_s = at + 5
    room.set(exit_s, "then both leave", **REST, occupied=False, staff_present=False)
    return ending, exit_s
