"""Sensirion SCD40/SCD41 CO2, periodic measurement (one sample every 5 s).

From the datasheet: every command is 16 bits, sent MSB first in a write of its
own; a command that answers needs 1 ms before the reply is read with a plain
read. Every 16-bit word in a reply is followed by a CRC-8 (polynomial 0x31,
init 0xFF, no reflection, no final XOR; CRC(0xBEEF) = 0x92), and a word whose
CRC does not match is rejected. ``get_data_ready_status`` (0xE4B8) says a new
sample is waiting when its low 11 bits are not all zero;
``read_measurement`` (0xEC05) returns CO2 ppm, temperature and humidity words.
In periodic mode the sensor refuses ``start_periodic_measurement`` (0x21B1),
so start-up first sends ``stop_periodic_measurement`` (0x3F86) and waits the
500 ms it needs.

Between samples ``read()`` returns the latest sample; with no new one for
``stale_after_s`` it reports a fault instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from roomwatch.hardware.faults import RangeCheck, describe_bug, describe_os_error, fault
from roomwatch.hardware.i2c import FakeI2cDevice, I2cBus, I2cChip, no_ack, read_bytes, write_bytes
from roomwatch.hardware.readings import Reading

log = logging.getLogger(__name__)

START_PERIODIC_MEASUREMENT = 0x21B1
READ_MEASUREMENT = 0xEC05
GET_DATA_READY_STATUS = 0xE4B8
STOP_PERIODIC_MEASUREMENT = 0x3F86
COMMAND_WAIT_S = 0.001
STOP_WAIT_S = 0.5
PERIOD_S = 5.0
DATA_READY_MASK = 0x07FF
OUTPUT_RANGE = RangeCheck(0, 40000, " ppm")


def crc8(data: bytes) -> int:
    """Sensirion's CRC-8: polynomial 0x31, initial value 0xFF."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_words(*words: int) -> bytes:
    """Words as the sensor sends them: MSB, LSB, CRC for each."""
    out = bytearray()
    for word in words:
        pair = word.to_bytes(2, "big")
        out += pair + bytes([crc8(pair)])
    return bytes(out)


def decode_words(data: bytes) -> list[int] | str:
    """The words of a reply, or which word failed its CRC."""
    words = []
    for index in range(0, len(data) - 2, 3):
        pair, check = data[index : index + 2], data[index + 2]
        if crc8(pair) != check:
            return f"word {index // 3 + 1}"
        words.append(int.from_bytes(pair, "big"))
    return words


class Scd4x(I2cChip):
    """CO2 in ppm from an SCD40/41 on I2C."""

    kind = "scd4x"

    def __init__(
        self,
        bus: I2cBus,
        address: int = 0x62,
        *,
        name: str = "co2",
        bus_number: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        stale_after_s: float = 4 * PERIOD_S,
    ) -> None:
        super().__init__(bus, address, name=name, bus_number=bus_number, sleep=sleep)
        self._monotonic = monotonic
        self._stale_after_s = stale_after_s
        self._started_at: float | None = None
        self._latest: tuple[float, float] | None = None  # (ppm, when)

    def read(self) -> Reading:
        try:
            return self._read()
        except OSError as exc:
            self._started_at = None
            return fault(self.name, self.label, describe_os_error(exc))
        except Exception as exc:  # read() must never raise
            log.exception("%s: unexpected error", self.label)
            self._started_at = None
            return fault(self.name, self.label, describe_bug(exc))

    def _command(self, command: int, reply_bytes: int = 0) -> bytes:
        write_bytes(self._bus, self._address, command.to_bytes(2, "big"))
        if not reply_bytes:
            return b""
        self._sleep(COMMAND_WAIT_S)
        return read_bytes(self._bus, self._address, reply_bytes)

    def _start(self) -> float:
        try:
            self._command(STOP_PERIODIC_MEASUREMENT)
            self._sleep(STOP_WAIT_S)
        except OSError:
            pass  # absent (the start below fails too), so no need to wait
        self._command(START_PERIODIC_MEASUREMENT)
        self._latest = None
        return self._monotonic()

    def _read(self) -> Reading:
        if self._started_at is None:
            self._started_at = self._start()
        now = self._monotonic()
        ready = decode_words(self._command(GET_DATA_READY_STATUS, 3))
        if isinstance(ready, str):
            return fault(self.name, self.label, "CRC check failed (data-ready status)")
        if ready[0] & DATA_READY_MASK:
            sample = decode_words(self._command(READ_MEASUREMENT, 9))
            if isinstance(sample, str):
                return fault(self.name, self.label, f"CRC check failed (measurement {sample})")
            if sample[0] == 0:
                return fault(self.name, self.label, "reported 0 ppm (not a valid sample)")
            problem = OUTPUT_RANGE.problem(sample[0])
            if problem is not None:
                return fault(self.name, self.label, problem)
            self._latest = (float(sample[0]), now)
        if self._latest is None:
            waited = now - self._started_at
            if waited > self._stale_after_s:
                return fault(self.name, self.label, f"no measurement {waited:.0f} s after start")
            return fault(self.name, self.label, "waiting for the first measurement (every 5 s)")
        ppm, at = self._latest
        if now - at > self._stale_after_s:
            return fault(self.name, self.label, f"no new measurement for {now - at:.0f} s")
        return Reading(self.name, ppm)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a sensor that is already gone
            self._command(STOP_PERIODIC_MEASUREMENT)
        self._bus.close()


class FakeScd4x(FakeI2cDevice):
    """An SCD4x at transfer level.

    Setting ``co2_ppm`` completes a new measurement (data ready); ``ready = False``
    withholds it. ``corrupt_crc`` flips the CRC of every reply; ``fail`` stops
    acknowledging; ``power_cycle()`` returns it to idle.
    """

    def __init__(self, co2_ppm: int = 600, temperature_c: float = 21.0, humidity: float = 40.0):
        self.temperature_c = temperature_c
        self.humidity = humidity
        self.periodic = False
        self.corrupt_crc = False
        self.commands: list[int] = []
        self._reply: bytes | None = None
        self.co2_ppm = co2_ppm

    @property
    def co2_ppm(self) -> int:
        return self._co2_ppm

    @co2_ppm.setter
    def co2_ppm(self, value: int) -> None:
        self._co2_ppm = value
        self.ready = True

    def power_cycle(self) -> None:
        self.periodic = False
        self.ready = False
        self._reply = None

    def write(self, data: bytes) -> None:
        if len(data) < 2:
            raise no_ack()
        command = int.from_bytes(data[:2], "big")
        self.commands.append(command)
        self._reply = None
        if command == STOP_PERIODIC_MEASUREMENT:
            self.periodic = False
        elif command == START_PERIODIC_MEASUREMENT:
            if self.periodic:
                raise no_ack()
            self.periodic = True
        elif command == GET_DATA_READY_STATUS:
            self._reply = encode_words(0x8006 if self.ready and self.periodic else 0x8000)
        elif command == READ_MEASUREMENT:
            if not self.periodic:
                raise no_ack()
            self.ready = False
            temperature = round((self.temperature_c + 45) * 65536 / 175)
            humidity = round(self.humidity * 65536 / 100)
            words = (self.co2_ppm & 0xFFFF, temperature & 0xFFFF, min(humidity, 0xFFFF))
            self._reply = encode_words(*words)
        else:
            raise no_ack()

    def read(self, length: int) -> bytes:
        reply, self._reply = self._reply, None
        if reply is None:
            raise no_ack()
        if self.corrupt_crc:
            reply = bytes(b ^ 0xFF if i % 3 == 2 else b for i, b in enumerate(reply))
        return reply[:length].ljust(length, b"\xff")
