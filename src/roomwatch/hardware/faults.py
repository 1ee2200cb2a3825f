"""Checks that turn a plausible-looking number into a fault, and fault wording.

Both checks are pure and clock-free: the caller passes the sample time, so a
test or the simulator can run hours of samples on a virtual timeline.

Why the stuck defaults are long (``STUCK_MIN_DURATION_S`` = 4 h and
``STUCK_MIN_SAMPLES`` = 240):

* A steady room really is steady. A DS18B20 reports in 0.0625 °C steps, and an
  interior, windowless time-out room held by the building's HVAC can sit inside
  one step for well over half an hour (at night, for hours). An empty room's
  light level is exactly 0 all night, and a saturated sensor in sun is pinned
  at its maximum (range ends are therefore exempt, see ``exempt``).
* A false "sensor fault" is not free: during an open episode it is a critical
  alert that pages staff (DESIGN.md), so the check must never fire on a normal
  room. The hazards it guards (a room slowly getting too hot or cold, air
  getting stale) build over hours, and the common failures (no device, bad CRC,
  no new data) are caught at once by each driver; this check catches the rarer
  sensor that goes on answering with its last value.
* 240 samples is one per minute over 4 h, so the longest configurable sample
  interval (60 s) still qualifies, while two samples far apart (an agent that
  was paused) never do.
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass, field

from roomwatch.hardware.readings import Reading

STUCK_MIN_SAMPLES = 240
STUCK_MIN_DURATION_S = 4 * 3600.0

#: Linux reports an I2C address nobody acknowledges as EREMOTEIO (121).
NO_ACK_ERRNO = getattr(errno, "EREMOTEIO", 121)


@dataclass
class StuckDetector:
    """Flags a value that has not changed at all for ``min_samples`` over ``min_duration_s``.

    Both limits must be reached. A value in ``exempt`` (a range end such as 0 lux
    in the dark) never counts as stuck and restarts the count.
    """

    min_samples: int = STUCK_MIN_SAMPLES
    min_duration_s: float = STUCK_MIN_DURATION_S
    exempt: frozenset[float] = frozenset()
    _value: float | None = field(default=None, init=False, repr=False)
    _since: float = field(default=0.0, init=False, repr=False)
    _samples: int = field(default=0, init=False, repr=False)

    def observe(self, value: float, at: float) -> bool:
        """Record a sample taken at ``at`` seconds; True while the value looks stuck."""
        if value in self.exempt:
            self.reset()
            return False
        if self._value is None or value != self._value or at < self._since:
            self._value, self._since, self._samples = value, at, 1
            return False
        self._samples += 1
        return self._samples >= self.min_samples and at - self._since >= self.min_duration_s

    def reset(self) -> None:
        """Forget the run (after a fault, a gap in readings, or a changed value)."""
        self._value, self._since, self._samples = None, 0.0, 0

    def describe(self, at: float) -> str:
        """Why the current run is suspect, for the fault message."""
        hours = (at - self._since) / 3600
        return (
            f"value unchanged at {self._value:g} for {hours:.1f} h "
            f"({self._samples} samples): sensor may be stuck"
        )


@dataclass(frozen=True, slots=True)
class RangeCheck:
    """The values a sensor can physically report; anything else (or NaN) is a fault."""

    low: float
    high: float
    unit: str = ""

    def problem(self, value: float) -> str | None:
        """None when ``value`` is plausible, else a short reason."""
        if math.isfinite(value) and self.low <= value <= self.high:
            return None
        return (
            f"{value:g}{self.unit} is outside the sensor's range "
            f"{self.low:g}..{self.high:g}{self.unit}"
        )


def fault(name: str, label: str, cause: str) -> Reading:
    """A reading with no value: ``"temperature (ds18b20 28-…): CRC check failed"``."""
    return Reading(name, None, f"{name} ({label}): {cause}")


def describe_os_error(exc: OSError) -> str:
    """A bus or file error in words a technician can act on."""
    if exc.errno == NO_ACK_ERRNO:
        return "not answering (no acknowledge on the bus: check wiring, power and address)"
    if exc.errno == errno.ETIMEDOUT:
        return "bus timed out (a line held low?)"
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"I/O error {name}: {reason}" if name else f"I/O error: {reason}"


def describe_bug(exc: Exception) -> str:
    """An unexpected exception inside a driver, reported instead of raised."""
    return f"driver error {type(exc).__name__}: {exc}"
