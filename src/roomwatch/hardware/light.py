"""Light from a light-dependent resistor and capacitor, timed by gpiozero's LightSensor.

gpiozero discharges the capacitor, then times how long the LDR takes to charge
it; its value runs from 0 (dark: no charge within ``charge_time_limit``) to 1
(bright), the median of its last five samples. Lux is ``value * lux_per_unit``,
a per-room calibration. A background thread samples about every 0.1 s; the
first ``read()`` waits until five samples exist (about half a second).

This circuit cannot tell a dark room from a broken wire (both read 0), so a dead
LDR is not reported as a fault; a BH1750 can be, and is the better sensor.
"""

from __future__ import annotations

import logging

from gpiozero import DeviceClosed, Factory, LightSensor

from roomwatch.hardware.faults import describe_bug, fault
from roomwatch.hardware.readings import Reading

log = logging.getLogger(__name__)

#: gpiozero's default, right for a 1 µF capacitor with a typical kit LDR.
CHARGE_TIME_LIMIT_S = 0.01


class LdrLight:
    """Lux from an LDR on ``pin``; construction raises if the pin cannot be used."""

    def __init__(
        self,
        pin: int | str,
        *,
        lux_per_unit: float = 1000.0,
        pin_factory: Factory | None = None,
        name: str = "light",
        charge_time_limit: float = CHARGE_TIME_LIMIT_S,
    ) -> None:
        self.name = name
        self.label = f"ldr {pin}"
        self.lux_per_unit = lux_per_unit
        self._device = LightSensor(
            pin, charge_time_limit=charge_time_limit, pin_factory=pin_factory
        )

    def read(self) -> Reading:
        try:
            value = float(self._device.value)
        except DeviceClosed:
            return fault(self.name, self.label, "closed")
        except Exception as exc:  # gpiozero raises many kinds; never raise
            log.exception("%s: read failed", self.label)
            return fault(self.name, self.label, describe_bug(exc))
        return Reading(self.name, round(value * self.lux_per_unit, 1))

    def close(self) -> None:
        self._device.close()
