"""Build the room's sampled sensors and presence sensor from the configuration.

Nothing here raises for a missing bus, port, pin or device: the agent must start
without its environmental sensors. A sensor whose bus or pin cannot be opened
is built as a :class:`PendingSensor` that reads as a fault saying why and tries
again every ``retry_s``; a presence port that cannot be opened is retried by
the LD2410 driver itself. Every sampled sensor is wrapped in a
:class:`StuckGuard` (see :mod:`roomwatch.hardware.faults` for the defaults).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gpiozero import Factory

from roomwatch.firmware_config.schema import (
    Bh1750Sensor,
    Bme280Sensor,
    Ds18b20Sensor,
    LdrSensor,
    Sensors,
)
from roomwatch.hardware.bh1750 import MAX_LUX, Bh1750
from roomwatch.hardware.bme280 import Bme280
from roomwatch.hardware.faults import StuckDetector, describe_bug, fault
from roomwatch.hardware.i2c import I2cBus, open_bus
from roomwatch.hardware.ld2410 import Ld2410, SerialPort, open_serial
from roomwatch.hardware.light import LdrLight
from roomwatch.hardware.onewire import W1_DEVICES, Ds18b20
from roomwatch.hardware.readings import PresenceSensor, Reading, SampledSensor
from roomwatch.hardware.scd4x import Scd4x

log = logging.getLogger(__name__)

I2cBusFactory = Callable[[int], I2cBus]
SerialFactory = Callable[[str, int], SerialPort]
Clock = Callable[[], float]
Sleep = Callable[[float], None]

RETRY_OPEN_S = 30.0


class LabelledSensor(SampledSensor, Protocol):
    """A sampled sensor that can say which device it is ("bme280 0x76 on i2c-1")."""

    @property
    def label(self) -> str: ...


class PendingSensor:
    """A sensor whose bus or pin could not be opened: a fault, retried every ``retry_s``."""

    def __init__(
        self,
        name: str,
        label: str,
        opener: Callable[[], LabelledSensor],
        error: Exception,
        *,
        monotonic: Clock = time.monotonic,
        retry_s: float = RETRY_OPEN_S,
    ) -> None:
        self.name = name
        self._label = label
        self._opener = opener
        self._monotonic = monotonic
        self._retry_s = retry_s
        self._driver: LabelledSensor | None = None
        self._error = _why_not_open(error)
        self._next_try = monotonic() + retry_s

    @property
    def label(self) -> str:
        return self._driver.label if self._driver is not None else self._label

    def read(self) -> Reading:
        if self._driver is None:
            now = self._monotonic()
            if now >= self._next_try:
                self._next_try = now + self._retry_s
                try:
                    self._driver = self._opener()
                except Exception as exc:  # noqa: BLE001 - opening must never raise here
                    self._error = _why_not_open(exc)
        if self._driver is None:
            return fault(self.name, self._label, f"cannot open: {self._error}")
        return self._driver.read()

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()


class StuckGuard:
    """Passes readings through, turning a value stuck for too long into a fault."""

    def __init__(
        self, sensor: LabelledSensor, detector: StuckDetector, monotonic: Clock = time.monotonic
    ) -> None:
        self.name = sensor.name
        self.sensor = sensor
        self.detector = detector
        self._monotonic = monotonic

    @property
    def label(self) -> str:
        return self.sensor.label

    def read(self) -> Reading:
        try:
            reading = self.sensor.read()
        except Exception as exc:  # drivers never raise; belt and braces
            log.exception("%s: read raised", self.name)
            self.detector.reset()
            return fault(self.name, self.sensor.label, describe_bug(exc))
        if reading.value is None:
            self.detector.reset()
            return reading
        now = self._monotonic()
        if self.detector.observe(reading.value, now):
            return fault(self.name, self.sensor.label, self.detector.describe(now))
        return reading

    def close(self) -> None:
        self.sensor.close()


def _why_not_open(exc: Exception) -> str:
    if isinstance(exc, ImportError):
        return f"{exc.name or 'a library'} is not installed"
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{reason} ({exc.filename})" if exc.filename else reason
    return f"{type(exc).__name__}: {exc}"


def _opened(
    name: str, label: str, opener: Callable[[], LabelledSensor], monotonic: Clock
) -> LabelledSensor:
    try:
        return opener()
    except Exception as exc:  # noqa: BLE001 - a missing sensor must not stop the agent
        log.warning("%s (%s) cannot be opened: %s", name, label, exc)
        return PendingSensor(name, label, opener, exc, monotonic=monotonic)


def _temperature(
    config: Ds18b20Sensor | Bme280Sensor,
    i2c_bus_factory: I2cBusFactory,
    onewire_base: Path,
    sleep: Sleep,
) -> tuple[str, Callable[[], LabelledSensor]]:
    if isinstance(config, Ds18b20Sensor):
        label = f"ds18b20 {config.device_id}" if config.device_id else "ds18b20"
        return label, lambda: Ds18b20(config.device_id, base=onewire_base)
    return f"bme280 0x{config.address:02x} on i2c-{config.bus}", lambda: Bme280(
        i2c_bus_factory(config.bus), config.address, bus_number=config.bus, sleep=sleep
    )


def _light(
    config: Bh1750Sensor | LdrSensor,
    pin_factory: Factory | None,
    i2c_bus_factory: I2cBusFactory,
    sleep: Sleep,
) -> tuple[str, Callable[[], LabelledSensor], frozenset[float]]:
    if isinstance(config, LdrSensor):
        return (
            f"ldr {config.pin}",
            lambda: LdrLight(config.pin, lux_per_unit=config.lux_per_unit, pin_factory=pin_factory),
            frozenset({0.0, round(config.lux_per_unit, 1)}),
        )
    return (
        f"bh1750 0x{config.address:02x} on i2c-{config.bus}",
        lambda: Bh1750(
            i2c_bus_factory(config.bus), config.address, bus_number=config.bus, sleep=sleep
        ),
        frozenset({0.0, round(MAX_LUX, 1)}),
    )


def build_sampled_sensors(
    config: Sensors,
    pin_factory: Factory | None,
    *,
    i2c_bus_factory: I2cBusFactory = open_bus,
    onewire_base: Path = W1_DEVICES,
    monotonic: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    stuck: Callable[[frozenset[float]], StuckDetector] | None = None,
) -> dict[str, SampledSensor]:
    """The configured environmental sensors, keyed "temperature", "light", "co2".

    Sensors that are not configured are absent. None of this raises: a bus, pin
    or device that is missing reads as a fault saying why. ``stuck`` makes the
    stuck detector for a sensor given its exempt values (default: the
    :class:`StuckDetector` defaults).
    """
    make_detector = stuck or (lambda exempt: StuckDetector(exempt=exempt))
    built: dict[str, SampledSensor] = {}

    def add(
        name: str, label: str, opener: Callable[[], LabelledSensor], exempt: frozenset[float]
    ) -> None:
        sensor = _opened(name, label, opener, monotonic)
        built[name] = StuckGuard(sensor, make_detector(exempt), monotonic)

    if config.temperature is not None:
        label, opener = _temperature(config.temperature, i2c_bus_factory, onewire_base, sleep)
        add("temperature", label, opener, frozenset())
    if config.light is not None:
        label, opener, exempt = _light(config.light, pin_factory, i2c_bus_factory, sleep)
        add("light", label, opener, exempt)
    if config.co2 is not None:
        co2 = config.co2
        add(
            "co2",
            f"scd4x 0x{co2.address:02x} on i2c-{co2.bus}",
            lambda: Scd4x(
                i2c_bus_factory(co2.bus),
                co2.address,
                bus_number=co2.bus,
                sleep=sleep,
                monotonic=monotonic,
            ),
            frozenset(),
        )
    return built


def build_presence(
    config: Sensors,
    *,
    serial_factory: SerialFactory = open_serial,
    monotonic: Clock = time.monotonic,
) -> PresenceSensor | None:
    """The mmWave presence sensor, or None when none is configured; never raises."""
    settings = config.presence
    if settings is None:
        return None

    def reopen() -> SerialPort:
        return serial_factory(settings.port, settings.baudrate)

    port: SerialPort | None = None
    error: str | None = None
    try:
        port = reopen()
    except Exception as exc:  # noqa: BLE001 - a missing port must not stop the agent
        error = _why_not_open(exc)
        log.warning("presence sensor on %s cannot be opened: %s", settings.port, error)
    return Ld2410(
        port, port_name=settings.port, monotonic=monotonic, reopen=reopen, open_error=error
    )
