"""One room's day as the school-day generator writes it (school_day.py): its steps and
faults in time order, and the few moves every plan shares (entering, leaving together).

A plan (a calm episode, calm.py, or an incident, incidents.py) writes one item into a
room from ``t0`` and returns when the room is free again, with its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import PolicyProfile
from roomwatch.core.wire import AlertType
from roomwatch.simulation.scenario import Button, Fault, Inputs, Room, Step

#: The room at rest, as the simulator starts it (simulation/room.py).
REST = {"temperature_c": 21.0, "lux": 320.0, "co2_ppm": 600.0}


@dataclass
class RoomDay:
    """One room's day as it is written: its steps, in time order, and its items."""

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

    def set(self, at: float, note: str | None = None, /, **inputs: Any) -> None:
        self.steps.append(Step(at=at, room=self.id, set=Inputs(**inputs), note=note))


def enter(room: RoomDay, t0: float, note: str) -> None:
    """A student and an adult go in and close the door."""
    room.set(t0, note, staff_present=True, occupied=True, door_closed=True)


def leave_together(room: RoomDay, at: float) -> float:
    """The student and the adult leave together, the room back at rest; the exit."""
    room.set(
        at,
        "student and adult leave together",
        **REST,
        door_closed=False,
        occupied=False,
        staff_present=False,
    )
    return at
