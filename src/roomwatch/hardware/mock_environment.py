"""Fake chips for every sensor a configuration names: for ``--mock``, tests and the simulator.

Each fake is the same stateful kind the driver tests use (a register-level
BME280, a sysfs DS18B20, ...), so the real drivers run against them. Set
``temperature_c``, ``lux``, ``co2_ppm`` or ``present`` and the next sample
reads it; ``present = None`` makes the mmWave module fall silent (a fault).

With a ``noise_seed`` (the simulator and the demo) every sample reads the set
value with the noise and drift of a real part (:mod:`roomwatch.hardware.wander`),
as a room would, so the agent's stuck-value detector sees what it would see in
a room; :meth:`MockEnvironment.stick` freezes a chip at its last reading (a
chip that goes on answering with a stale value). Without one, a sample reads
exactly the value set (driver and agent tests).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from gpiozero import Factory

from roomwatch.firmware_config.schema import (
    Bh1750Sensor,
    Bme280Sensor,
    Ds18b20Sensor,
    Scd4xSensor,
    Sensors,
)
from roomwatch.hardware.bh1750 import FakeBh1750
from roomwatch.hardware.bme280 import FakeBme280
from roomwatch.hardware.i2c import FakeI2cBus, I2cBus
from roomwatch.hardware.ld2410 import FakeSerial, Ld2410Frame, SerialPort, TargetState, encode_frame
from roomwatch.hardware.onewire import FakeDs18b20
from roomwatch.hardware.readings import PresenceSensor, Reading, SampledSensor
from roomwatch.hardware.scd4x import FakeScd4x
from roomwatch.hardware.sensors import build_presence, build_sampled_sensors
from roomwatch.hardware.wander import CO2, LIGHT, TEMPERATURE, Wander, WanderSpec

log = logging.getLogger(__name__)

MOCK_DS18B20 = "28-000000000001"

#: Sampled sensor (the agent's name) -> the quantity its chip measures, and how it strays.
QUANTITY_OF = {"temperature": "temperature_c", "light": "lux", "co2": "co2_ppm"}
WANDER: dict[str, WanderSpec] = {"temperature_c": TEMPERATURE, "lux": LIGHT, "co2_ppm": CO2}
#: The value each quantity starts at, as a room with nothing set.
STARTING = {"temperature_c": 21.0, "lux": 320.0, "co2_ppm": 600.0}


class LiveFakeSerial(FakeSerial):
    """An LD2410 that reports on demand: a frame per read while ``present`` is not None."""

    def __init__(self) -> None:
        super().__init__()
        self.present: bool | None = False

    @property
    def in_waiting(self) -> int:
        if not self.buffer and self.present is not None:
            state = TargetState.STATIONARY if self.present else TargetState.NONE
            self.feed(encode_frame(Ld2410Frame(state, 0, 0, 120, 60, 120)))
        return super().in_waiting


class LiveFakeScd4x(FakeScd4x):
    """An SCD4x that always has a fresh measurement, as a real one does every 5 s."""

    def write(self, data: bytes) -> None:
        super().write(data)
        self.ready = True


class Stirred:
    """A sampled sensor whose fake chip takes its next value just before each read."""

    def __init__(self, sensor: SampledSensor, stir: Callable[[], None]) -> None:
        self.name = sensor.name
        self.sensor = sensor
        self._stir = stir

    @property
    def label(self) -> str:
        return str(getattr(self.sensor, "label", self.name))

    def read(self) -> Reading:
        try:
            self._stir()
        except Exception:  # a fake's trouble must never stop the agent's loop
            log.exception("%s: could not set the fake chip's next value", self.name)
        return self.sensor.read()

    def close(self) -> None:
        self.sensor.close()


class MockEnvironment:
    """The room's air and light, as fake chips on fake buses."""

    def __init__(
        self, sensors: Sensors, folder: Path | None = None, noise_seed: str | None = None
    ) -> None:
        self._config = sensors
        self._noise_seed = noise_seed
        self._wander = {
            q: Wander(spec, f"{noise_seed}/{q}")
            for q, spec in WANDER.items()
            if noise_seed is not None
        }
        self.values: dict[str, float] = dict(STARTING)  # what the room is (the set values)
        self.stuck: set[str] = set()  # quantities whose chip repeats its last reading
        self._monotonic: Callable[[], float] = time.monotonic
        self._folder = folder or Path(tempfile.mkdtemp(prefix="roomwatch-mock-w1-"))
        self.bus = FakeI2cBus()
        self.bme280: FakeBme280 | None = None
        self.ds18b20: FakeDs18b20 | None = None
        self.bh1750: FakeBh1750 | None = None
        self.scd4x: FakeScd4x | None = None
        self.serial = LiveFakeSerial()
        match sensors.temperature:
            case Bme280Sensor(address=address):
                self.bme280 = self.bus.add(address, FakeBme280(temperature_c=21.0))
            case Ds18b20Sensor(device_id=device_id):
                self.ds18b20 = FakeDs18b20(self._folder, device_id or MOCK_DS18B20, 21.0)
        if isinstance(sensors.light, Bh1750Sensor):
            self.bh1750 = self.bus.add(sensors.light.address, FakeBh1750(lux=320.0))
        if isinstance(sensors.co2, Scd4xSensor):
            self.scd4x = self.bus.add(sensors.co2.address, LiveFakeScd4x(co2_ppm=600))

    def _chips(self, quantity: str) -> list[object]:
        table: dict[str, list[object]] = {
            "temperature_c": [self.bme280, self.ds18b20],
            "lux": [self.bh1750],
            "co2_ppm": [self.scd4x],
        }
        return [chip for chip in table[quantity] if chip is not None]

    def _write(self, quantity: str, value: float) -> None:
        for chip in self._chips(quantity):
            setattr(chip, quantity, round(value) if quantity == "co2_ppm" else value)

    # ----------------------------------------------------------- the room

    def set(self, quantity: str, value: float | bool | None) -> None:
        """Set ``temperature_c``, ``lux``, ``co2_ppm`` or ``present``."""
        if quantity == "present":
            self.serial.present = None if value is None else bool(value)
            return
        if quantity not in STARTING:
            raise ValueError(f"unknown quantity {quantity!r}")
        if not self._chips(quantity):
            raise ValueError(f"no sensor for {quantity} is configured")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{quantity} needs a number, got {value!r}")
        self.values[quantity] = float(value)
        if quantity not in self.stuck:
            self._write(quantity, float(value))  # read exactly, or stirred at the next sample

    def stick(self, quantity: str, stuck: bool) -> None:
        """Freeze the chip at its last reading (True), whatever the room does; or free it."""
        if quantity not in STARTING:
            raise ValueError(f"unknown quantity {quantity!r}")
        if stuck:
            self.stuck.add(quantity)
            return
        self.stuck.discard(quantity)
        if self._noise_seed is None:
            self._write(quantity, self.values[quantity])

    def _stir(self, quantity: str) -> None:
        """Give the chip its next reading: the set value, strayed as a real part strays."""
        wander = self._wander.get(quantity)
        if wander is None or quantity in self.stuck:
            return
        self._write(quantity, wander.around(self.values[quantity], self._monotonic()))

    # ------------------------------------------------------------ drivers

    def sampled_sensors(
        self, pin_factory: Factory | None, monotonic: Callable[[], float] = time.monotonic
    ) -> dict[str, SampledSensor]:
        """The real drivers on the fake chips; ``monotonic`` lets a virtual clock run them.

        With a noise seed, each sensor stirs its chip just before it is read."""
        self._monotonic = monotonic
        built = build_sampled_sensors(
            self._config,
            pin_factory,
            i2c_bus_factory=self._bus,
            onewire_base=self._folder,
            monotonic=monotonic,
            sleep=lambda _s: None,
        )
        if self._noise_seed is None:
            return built
        return {
            name: Stirred(sensor, partial(self._stir, QUANTITY_OF[name]))
            if name in QUANTITY_OF
            else sensor
            for name, sensor in built.items()
        }

    def presence(self, monotonic: Callable[[], float] | None = None) -> PresenceSensor | None:
        """The presence driver on the fake port; ``monotonic`` lets a virtual clock run it
        (default: the clock :meth:`sampled_sensors` was given, so both run on one clock)."""
        return build_presence(
            self._config, serial_factory=self._serial, monotonic=monotonic or self._monotonic
        )

    def _bus(self, number: int) -> I2cBus:
        return self.bus.share()

    def _serial(self, port: str, baudrate: int) -> SerialPort:
        return self.serial
