"""ROHM BH1750 ambient light, continuous high-resolution mode.

The datasheet's sequence: opcode 0x01 (power on), opcode 0x10 (continuous
H-resolution mode, 1 lx steps, up to 180 ms per measurement); after that any
plain 2-byte read returns the latest result, big-endian, and lux = raw / 1.2
at the default measurement time. The chip has no registers, so the result is
read with a plain read (:func:`~roomwatch.hardware.i2c.read_bytes`), never
after a register byte, which it would take as an opcode.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from roomwatch.hardware.faults import describe_bug, describe_os_error, fault
from roomwatch.hardware.i2c import FakeI2cDevice, I2cBus, I2cChip, read_bytes
from roomwatch.hardware.readings import Reading

log = logging.getLogger(__name__)

POWER_DOWN = 0x00
POWER_ON = 0x01
RESET = 0x07
CONTINUOUS_HIGH_RES = 0x10
MEASUREMENT_MODES = frozenset({0x10, 0x11, 0x13, 0x20, 0x21, 0x23})
#: Datasheet: H-resolution measurement takes 120 ms typical, 180 ms at most.
FIRST_RESULT_S = 0.18
LUX_PER_COUNT = 1 / 1.2
MAX_LUX = 0xFFFF * LUX_PER_COUNT


class Bh1750(I2cChip):
    """Lux from a BH1750; a chip that stops answering is re-initialised when it is back."""

    kind = "bh1750"

    def __init__(
        self,
        bus: I2cBus,
        address: int = 0x23,
        *,
        name: str = "light",
        bus_number: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(bus, address, name=name, bus_number=bus_number, sleep=sleep)
        self._started = False

    def read(self) -> Reading:
        try:
            if not self._started:
                self._bus.write_byte(self._address, POWER_ON)
                self._bus.write_byte(self._address, CONTINUOUS_HIGH_RES)
                self._sleep(FIRST_RESULT_S)
                self._started = True
            raw = read_bytes(self._bus, self._address, 2)
        except OSError as exc:
            self._started = False
            return fault(self.name, self.label, describe_os_error(exc))
        except Exception as exc:  # read() must never raise
            log.exception("%s: unexpected error", self.label)
            self._started = False
            return fault(self.name, self.label, describe_bug(exc))
        return Reading(self.name, round(int.from_bytes(raw, "big") * LUX_PER_COUNT, 1))

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a chip that is already gone
            self._bus.write_byte(self._address, POWER_DOWN)
        self._bus.close()


class FakeBh1750(FakeI2cDevice):
    """A BH1750: set ``lux`` (and ``fail``); ``power_cycle()`` returns it to power-down."""

    def __init__(self, lux: float = 300.0) -> None:
        self.lux = lux
        self.powered = False
        self.mode: int | None = None

    def power_cycle(self) -> None:
        self.powered = False
        self.mode = None

    def write(self, data: bytes) -> None:
        for opcode in data:
            if opcode == POWER_DOWN:
                self.powered = False
            elif opcode == POWER_ON:
                self.powered = True
            elif opcode in MEASUREMENT_MODES:
                self.powered = True
                self.mode = opcode

    def read(self, length: int) -> bytes:
        measuring = self.powered and self.mode is not None
        raw = min(0xFFFF, max(0, round(self.lux * 1.2))) if measuring else 0
        return raw.to_bytes(2, "big")[:length].ljust(length, b"\0")
