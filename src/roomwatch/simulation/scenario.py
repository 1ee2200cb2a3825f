"""The scenario format (docs/simulation.md): rooms, scripted inputs, faults and expectations.

Strict like every Roomwatch file: an unknown key, a room nobody declared or a
step after the end is an error naming the key path and its line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from roomwatch.core import yaml_lines
from roomwatch.core.policy import StudentBand, available_profiles
from roomwatch.core.wire import ID_PATTERN, AlertType, Severity
from roomwatch.firmware_config import ConfigError, parse_model

_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"^(?:{_NUMBER}h)?(?:{_NUMBER}m)?(?:{_NUMBER}s)?$")


def to_seconds(value: object) -> float:
    """``90s``, ``5m``, ``1h``, ``2m30s``, ``1.5m`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a time is a number of seconds or text such as 90s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (match := _DURATION.match(value.strip())):
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    elif isinstance(value, str) and re.fullmatch(_NUMBER, value.strip()):
        seconds = float(value)
    else:
        raise ValueError(
            f"{value!r} is not a time: write 90s, 5m, 1h, 2m30s or a number of seconds"
        )
    if seconds < 0:
        raise ValueError("a time cannot be negative")
    return seconds


Seconds = Annotated[float, BeforeValidator(to_seconds)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Room(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Room id, unique within its site.")
    site: str = Field("demo", pattern=ID_PATTERN)
    profile: str = Field("default", description="Policy profile id (`roomwatch policies list`).")
    student_band: StudentBand | None = None
    presence: bool = Field(
        False,
        description="Also fit an mmWave presence sensor (LD2410): it sees whoever is inside "
        "(it follows `occupied`), and a `sensor_fault` can silence it.",
    )

    @field_validator("profile")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in available_profiles():
            raise ValueError(
                f"unknown policy profile {value!r}; known: {', '.join(available_profiles())}"
            )
        return value


class Inputs(Strict):
    """What a step may set; anything not named keeps its last value."""

    occupied: bool | None = Field(None, description="Someone moves inside (the PIR).")
    door_closed: bool | None = None
    door_locked: bool | None = None
    staff_present: bool | None = Field(None, description="Staff at the observation point.")
    temperature_c: float | None = Field(None, ge=-40, le=85)
    lux: float | None = Field(None, ge=0, le=65535)
    co2_ppm: float | None = Field(None, ge=0, le=40000)


class Button(StrEnum):
    STAFF_BUTTON = "staff_button"


class Step(Strict):
    at: Seconds
    room: str
    set: Inputs | None = None
    press: Button | None = None
    note: str | None = Field(None, max_length=200, description="What happens, for the log.")

    @model_validator(mode="after")
    def _something(self) -> Step:
        if self.set is None and self.press is None:
            raise ValueError("a step needs `set` (inputs to change) or `press: staff_button`")
        return self


class FaultKind(StrEnum):
    BROKER_DOWN = "broker_down"
    AGENT_CRASH = "agent_crash"
    COLLECTOR_RESTART = "collector_restart"
    SENSOR_FAULT = "sensor_fault"
    STUCK = "stuck"  # the chip goes on answering with its last value


class Sensor(StrEnum):
    TEMPERATURE = "temperature"
    LIGHT = "light"
    CO2 = "co2"
    PRESENCE = "presence"  # the mmWave module, in a room with `presence: true`


class Fault(Strict):
    at: Seconds
    kind: FaultKind
    duration_s: Seconds = Field(0, alias="for", description="How long it lasts (0: a moment).")
    room: str | None = Field(None, description="The room, for agent_crash, sensor_fault and stuck.")
    sensor: Sensor | None = Field(
        None, description="For sensor_fault and stuck: which sensor fails."
    )
    note: str | None = Field(None, max_length=200, description="What happens, for the log.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _fits(self) -> Fault:
        per_sensor = self.kind in (FaultKind.SENSOR_FAULT, FaultKind.STUCK)
        per_room = per_sensor or self.kind is FaultKind.AGENT_CRASH
        if per_room and self.room is None:
            raise ValueError(f"{self.kind.value} needs `room`")
        if not per_room and self.room is not None:
            raise ValueError(f"{self.kind.value} affects every room: leave out `room`")
        if per_sensor and self.sensor is None:
            which = "temperature, light or co2"
            if self.kind is FaultKind.SENSOR_FAULT:
                which = "temperature, light, co2 or presence"
            raise ValueError(f"{self.kind.value} needs `sensor`: {which}")
        if self.kind is FaultKind.STUCK and self.sensor is Sensor.PRESENCE:
            raise ValueError(
                "stuck is for temperature, light or co2 (a module that stops "
                "sending is a sensor_fault)"
            )
        if not per_sensor and self.sensor is not None:
            raise ValueError("`sensor` is only for sensor_fault and stuck")
        if self.kind is not FaultKind.COLLECTOR_RESTART and self.duration_s <= 0:
            raise ValueError(f"{self.kind.value} needs `for` (how long it lasts, e.g. 2m)")
        return self

    @property
    def end(self) -> float:
        return self.at + self.duration_s


Window = tuple[Seconds, Seconds]


def _window_ordered(window: Window | None) -> Window | None:
    if window is not None and window[1] < window[0]:
        raise ValueError("`between` needs [earliest, latest], earliest first")
    return window


class _Expectation(Strict):
    room: str | None = Field(None, description="Only this room (default: any room).")
    between: Window | None = Field(None, description="When it happens: [earliest, latest].")
    count: int | None = Field(None, ge=0, description="Exactly this many (default: at least 1).")

    _ordered = field_validator("between")(classmethod(lambda cls, v: _window_ordered(v)))


class ExpectAlert(_Expectation):
    alert: AlertType
    severity: Severity | None = None
    resolved_between: Window | None = Field(
        None, description="The alert resolves within [earliest, latest]."
    )

    _ordered_resolved = field_validator("resolved_between")(
        classmethod(lambda cls, v: _window_ordered(v))
    )


class ExpectNoAlert(Strict):
    no_alert: AlertType
    room: str | None = None
    between: Window | None = None

    _ordered = field_validator("between")(classmethod(lambda cls, v: _window_ordered(v)))


class EpisodeEdge(StrEnum):
    STARTED = "started"
    ENDED = "ended"


class ExpectEpisode(_Expectation):
    episode: EpisodeEdge


class ExpectAction(_Expectation):
    action: str = Field(description="An agent action, e.g. lock_released or lock_cleared.")


class ExpectNoAction(Strict):
    no_action: str
    room: str | None = None
    between: Window | None = None

    _ordered = field_validator("between")(classmethod(lambda cls, v: _window_ordered(v)))


Expectation = ExpectAlert | ExpectNoAlert | ExpectEpisode | ExpectAction | ExpectNoAction

_EXPECT_KEYS: dict[str, type[BaseModel]] = {
    "alert": ExpectAlert,
    "no_alert": ExpectNoAlert,
    "episode": ExpectEpisode,
    "action": ExpectAction,
    "no_action": ExpectNoAction,
}


def _one_expectation(value: Any) -> Any:
    """Pick the expectation's model by its one leading key, so errors name the right fields."""
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise ValueError("an expectation is a mapping, e.g. {alert: monitoring_lapse}")
    kinds = [k for k in _EXPECT_KEYS if k in value]
    if len(kinds) != 1:
        raise ValueError(
            "an expectation needs exactly one of: " + ", ".join(_EXPECT_KEYS) + f" (got {kinds})"
        )
    return _EXPECT_KEYS[kinds[0]].model_validate(value)


class Scenario(Strict):
    duration_s: Seconds = Field(alias="duration", gt=0, le=7 * 24 * 3600)
    start: AwareDatetime | None = Field(
        None,
        description="When the scenario begins, with its offset (e.g. 2026-01-05T15:00:00Z); "
        "default Monday 5 January 2026, 08:00 UTC. The simulated school day ends 15:30 UTC.",
    )
    rooms: list[Room] = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    expect: list[Annotated[Expectation, BeforeValidator(_one_expectation)]] = Field(
        default_factory=list
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("start", mode="before")
    @classmethod
    def _a_date_and_time(cls, value: object) -> object:
        # YAML reads 15:00 as the number 900, which pydantic would take for 1970.
        if isinstance(value, int | float):
            raise ValueError("write a date and time with its offset, e.g. 2026-01-05T15:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        keys = [(r.site, r.id) for r in self.rooms]
        if len(set(keys)) != len(keys):
            raise ValueError("two rooms with the same site and id")
        if len({r.id for r in self.rooms}) != len(keys):
            raise ValueError("room ids must be unique (steps name rooms by id alone)")
        return self

    def room(self, room_id: str) -> Room:
        return next(r for r in self.rooms if r.id == room_id)


def _references(scenario: Scenario, doc: yaml_lines.LinedDocument) -> list[yaml_lines.Problem]:
    """Rooms named but not declared, and times past the end, each with its line."""
    ids = {r.id for r in scenario.rooms}
    found = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        found.append(yaml_lines.Problem(".".join(map(str, path)), doc.line_of(path), message))

    timed: list[tuple[str, Sequence[Step | Fault]]] = [
        ("steps", scenario.steps),
        ("faults", scenario.faults),
    ]
    for kind, items in timed:
        for i, item in enumerate(items):
            room = getattr(item, "room", None)
            if room is not None and room not in ids:
                problem((kind, i, "room"), f"unknown room {room!r}; the rooms are {sorted(ids)}")
            elif (
                isinstance(item, Fault)
                and item.sensor is Sensor.PRESENCE
                and room is not None
                and not scenario.room(room).presence
            ):
                problem((kind, i, "sensor"), f"{room} has no presence sensor (`presence: true`)")
            if item.at > scenario.duration_s:
                problem(
                    (kind, i, "at"), f"{item.at:g} s is after the end ({scenario.duration_s:g} s)"
                )
    for i, e in enumerate(scenario.expect):
        if e.room is not None and e.room not in ids:
            problem(("expect", i, "room"), f"unknown room {e.room!r}; the rooms are {sorted(ids)}")
    return found


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML; :class:`ConfigError` lists every problem with its line."""
    scenario = parse_model(text, Scenario, source)
    problems = _references(scenario, yaml_lines.parse(text))
    if problems:
        raise ConfigError(source, problems)
    return scenario


def load_scenario(path: Path) -> Scenario:
    """Read and validate the scenario file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [yaml_lines.Problem("", None, f"cannot read the file: {exc}")]
        ) from None
    return parse_scenario(text, str(path))


__all__ = ["ConfigError", "Scenario", "load_scenario", "parse_scenario", "to_seconds"]
