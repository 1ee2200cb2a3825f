"""Fake chips for every sensor a configuration names: for ``--mock``, tests and the simulator.

Each fake is the same stateful kind the driver tests use (a register-level
BME280, a sysfs DS18B20, ...), so the real drivers run against them. Set
``temperature_c``, ``lux``, ``co2_ppm`` or ``present`` and the next sample
reads it; ``present = None`` makes the mmWave module fall silent (a fault).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
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
from roomwatch.hardware.readings import PresenceSensor, SampledSensor
from roomwatch.hardware.scd4x import FakeScd4x
from roomwatch.hardware.sensors import build_presence, build_sampled_sensors

MOCK_DS18B20 = "28-000000000001"


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


class MockEnvironment:
    """The room's air and light, as fake chips on fake buses."""

    def __init__(self, sensors: Sensors, folder: Path | None = None) -> None:
        self._config = sensors
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

    # ----------------------------------------------------------- the room

    def set(self, quantity: str, value: float | bool | None) -> None:
        """Set ``temperature_c``, ``lux``, ``co2_ppm`` or ``present``."""
        if quantity == "present":
            self.serial.present = None if value is None else bool(value)
            return
        table: dict[str, list[object]] = {
            "temperature_c": [self.bme280, self.ds18b20],
            "lux": [self.bh1750],
            "co2_ppm": [self.scd4x],
        }
        targets = table.get(quantity)
        if targets is None:
            raise ValueError(f"unknown quantity {quantity!r}")
        fitted = [t for t in targets if t is not None]
        if not fitted:
            raise ValueError(f"no sensor for {quantity} is configured")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"{quantity} needs a number, got {value!r}")
        for target in fitted:
            setattr(target, quantity, int(value) if quantity == "co2_ppm" else float(value))

    # ------------------------------------------------------------ drivers

    def sampled_sensors(
        self, pin_factory: Factory | None, monotonic: Callable[[], float] = time.monotonic
    ) -> dict[str, SampledSensor]:
        """The real drivers on the fake chips; ``monotonic`` lets a virtual clock run them."""
        return build_sampled_sensors(
            self._config,
            pin_factory,
            i2c_bus_factory=self._bus,
            onewire_base=self._folder,
            monotonic=monotonic,
            sleep=lambda _s: None,
        )

    def presence(self, monotonic: Callable[[], float] = time.monotonic) -> PresenceSensor | None:
        """The presence driver on the fake port; ``monotonic`` lets a virtual clock run it."""
        return build_presence(self._config, serial_factory=self._serial, monotonic=monotonic)

    def _bus(self, number: int) -> I2cBus:
        return self.bus.share()

    def _serial(self, port: str, baudrate: int) -> SerialPort:
        return self.serial
