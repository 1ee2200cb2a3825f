"""What the camera tells the agent: numbers and a sighting, never a picture (no OpenCV here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Sighting(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CameraReading:
    """One analysed frame.

    ``confidence`` (0-1) is the estimator's confidence in ``sighting`` (0 when unknown);
    ``motion`` is the fraction of the visible view that moved; ``luminance`` the mean grey
    level (0-255) of the visible view, a light reading of last resort. ``fault`` says why
    the camera cannot see (covered, dark, failed, not calibrated), and is None otherwise.
    """

    sighting: Sighting
    confidence: float = 0.0
    motion: float | None = None
    luminance: float | None = None
    fault: str | None = None

    @property
    def present(self) -> bool | None:
        """For the state machine: True, False, or None (unknown counts as occupied)."""
        if self.sighting is Sighting.UNKNOWN:
            return None
        return self.sighting is Sighting.PRESENT


class CameraInput(Protocol):
    """The camera as the agent sees it: read one frame's sighting; never raises."""

    name: str
    interval_s: float

    def read(self) -> CameraReading: ...

    def close(self) -> None: ...


class UnavailableCamera:
    """A configured camera that cannot work at all (OpenCV missing): always unknown, saying why."""

    name = "camera"

    def __init__(self, reason: str, interval_s: float = 0.5) -> None:
        self.reason = reason
        self.interval_s = interval_s

    def read(self) -> CameraReading:
        return CameraReading(Sighting.UNKNOWN, fault=f"camera: {self.reason}")

    def close(self) -> None:
        pass
