"""What every sampled sensor driver returns: a value, or the reason there is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample. ``value`` is None exactly when ``fault`` says why."""

    sensor: str
    value: float | None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


@dataclass(frozen=True, slots=True)
class PresenceReading:
    """A presence sensor's answer: someone there (True), no one (False), or unknown (None)."""

    sensor: str
    present: bool | None
    fault: str | None = None


class SampledSensor(Protocol):
    """A sensor the agent polls every ``sample_interval_s``. ``read`` never raises."""

    name: str

    def read(self) -> Reading: ...

    def close(self) -> None: ...


class PresenceSensor(Protocol):
    name: str

    def read(self) -> PresenceReading: ...

    def close(self) -> None: ...
