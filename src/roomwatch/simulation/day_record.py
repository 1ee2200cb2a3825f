"""The record of a generated school day (school_day.py): what was put in it, and the
simulated room's timing every window is drawn from.

One job: the plain records :mod:`roomwatch.simulation.truth` judges the alerts against
(the calm episodes with their noise, each incident with the alerts it must raise and the
window each may be raised in), and the room's timing those windows follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from roomwatch.core.wire import AlertType
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.simulation.engine import STEP_S
from roomwatch.simulation.room import ROOM_TEMPLATE
from roomwatch.simulation.scenario import Scenario


@dataclass(frozen=True)
class Expected:
    """An alert an incident must raise: ``type`` in ``room``, raised within [earliest,
    deadline]. ``why`` says where the window comes from."""

    type: AlertType
    earliest_s: float
    deadline_s: float
    why: str


def expect(type_: AlertType, at: float, slack: float, why: str) -> Expected:
    """``type_`` from ``at`` to ``slack`` after it."""
    return Expected(type_, round(at, 3), round(at + slack, 3), why)


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
    return room_timing().edge_s


def settle_s() -> float:
    """How long after an exit the simulated room confirms the end."""
    return room_timing().settle_s


@cache
def room_timing() -> Timing:
    """The simulated room's timing, read once from its configuration template."""
    t = parse_model(ROOM_TEMPLATE, AgentConfig, "simulated room").timing
    return Timing(
        t.sample_interval_s, t.telemetry_interval_s, t.occupancy_hold_s + t.empty_debounce_s
    )
