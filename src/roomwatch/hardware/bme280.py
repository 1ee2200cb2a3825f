"""Bosch BME280 (and BMP280) temperature, with humidity when the chip has it.

Forced mode, from the datasheet: write ctrl_hum (0xF2, takes effect on the
next ctrl_meas write), then ctrl_meas (0xF4) with temperature oversampling x1,
pressure skipped and mode 01 (forced); the chip measures once (≤ 6.5 ms at
these settings), clears the ``measuring`` bit of status (0xF3) and goes back
to sleep. Raw values are 20-bit temperature (0xFA..0xFC) and 16-bit humidity
(0xFD..0xFE), compensated with the chip's own trimming values (0x88..0xA1,
0xE1..0xE7) using the datasheet's double-precision formulas. A data register
still holding its reset value (0x80000 / 0x8000) means no measurement ran.

:class:`FakeBme280` is a register-level twin: it encodes a temperature into
raw ADC counts with the datasheet's *integer* formula and the same trimming
values, so the driver's floating-point compensation is really exercised.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from roomwatch.hardware.faults import (
    RangeCheck,
    describe_bug,
    describe_os_error,
    fault,
)
from roomwatch.hardware.i2c import FakeI2cDevice, I2cBus, I2cChip
from roomwatch.hardware.readings import Reading

log = logging.getLogger(__name__)

CHIP_ID_REGISTER = 0xD0
RESET_REGISTER = 0xE0
RESET_WORD = 0xB6
CTRL_HUM = 0xF2
STATUS = 0xF3
CTRL_MEAS = 0xF4
TEMPERATURE_DATA = 0xFA  # temp_msb, temp_lsb, temp_xlsb, hum_msb, hum_lsb follow
CALIBRATION_TP = 0x88  # 24 bytes: dig_T1..dig_P9
CALIBRATION_H1 = 0xA1
CALIBRATION_H2 = 0xE1  # 7 bytes: dig_H2..dig_H6

BME280_ID = 0x60
BMP280_ID = 0x58
STATUS_MEASURING = 0x08
OVERSAMPLE_X1 = 0b001
FORCED_MODE = 0b01
CTRL_MEAS_FORCED = (OVERSAMPLE_X1 << 5) | FORCED_MODE  # pressure skipped
ADC_T_RESET = 0x80000
ADC_H_RESET = 0x8000

#: Datasheet t_measure,max for T x1 + H x1 is about 6.5 ms; first look after 8 ms.
MEASURE_WAIT_S = 0.008
STATUS_POLL_S = 0.002
STATUS_POLLS = 5

OPERATING_RANGE = RangeCheck(-40.0, 85.0, " °C")


def _s12(value: int) -> int:
    """A 12-bit two's-complement number."""
    return value - 0x1000 if value & 0x800 else value


@dataclass(frozen=True, slots=True)
class Calibration:
    """The chip's trimming values (datasheet table 16); humidity ones are 0 on a BMP280."""

    t1: int
    t2: int
    t3: int
    h1: int = 0
    h2: int = 0
    h3: int = 0
    h4: int = 0
    h5: int = 0
    h6: int = 0

    @classmethod
    def decode(cls, tp: bytes, h1: int, h: bytes) -> Calibration:
        """From 24 bytes at 0x88, the byte at 0xA1 and 7 bytes at 0xE1."""
        t1, t2, t3 = struct.unpack_from("<Hhh", tp)
        h2, h3, e4, e5, e6, h6 = struct.unpack("<hBBBBb", h)
        return cls(
            t1=t1,
            t2=t2,
            t3=t3,
            h1=h1,
            h2=h2,
            h3=h3,
            h4=_s12((e4 << 4) | (e5 & 0x0F)),
            h5=_s12((e6 << 4) | (e5 >> 4)),
            h6=h6,
        )

    def plausible(self) -> bool:
        # An unprogrammed or unreadable NVM reads as all zeros or all ones.
        return self.t1 not in (0, 0xFFFF) and self.t2 != 0


def compensate_temperature(adc_t: int, cal: Calibration) -> tuple[float, float]:
    """°C and t_fine from a raw 20-bit temperature (datasheet 8.1, double precision)."""
    var1 = (adc_t / 16384.0 - cal.t1 / 1024.0) * cal.t2
    delta = adc_t / 131072.0 - cal.t1 / 8192.0
    var2 = delta * delta * cal.t3
    return (var1 + var2) / 5120.0, float(int(var1 + var2))


def compensate_humidity(adc_h: int, t_fine: float, cal: Calibration) -> float:
    """%RH from a raw 16-bit humidity (datasheet 8.1, double precision), clamped to 0..100."""
    var_h = t_fine - 76800.0
    var_h = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * var_h)) * (
        cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * var_h * (1.0 + cal.h3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - cal.h1 * var_h / 524288.0)
    return min(100.0, max(0.0, var_h))


class Bme280(I2cChip):
    """Temperature from a BME280/BMP280; ``humidity`` holds the same sample's %RH."""

    kind = "bme280"

    def __init__(
        self,
        bus: I2cBus,
        address: int = 0x76,
        *,
        name: str = "temperature",
        bus_number: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(bus, address, name=name, bus_number=bus_number, sleep=sleep)
        self._calibration: Calibration | None = None
        self._has_humidity = False
        self.humidity: Reading = fault("humidity", self.label, "not read yet")

    def read(self) -> Reading:
        try:
            return self._measure()
        except OSError as exc:
            # The chip may have been power-cycled or replaced: start over next time.
            self._calibration = None
            return self._fault(describe_os_error(exc))
        except Exception as exc:  # read() must never raise
            log.exception("%s: unexpected error", self.label)
            self._calibration = None
            return self._fault(describe_bug(exc))

    def _fault(self, cause: str) -> Reading:
        self.humidity = fault("humidity", self.label, cause)
        return fault(self.name, self.label, cause)

    def _setup(self) -> Calibration | str:
        chip_id = self._bus.read_byte_data(self._address, CHIP_ID_REGISTER)
        if chip_id not in (BME280_ID, BMP280_ID):
            return f"unexpected chip id 0x{chip_id:02x} (a BME280 says 0x60, a BMP280 0x58)"
        tp = bytes(self._bus.read_i2c_block_data(self._address, CALIBRATION_TP, 24))
        self._has_humidity = chip_id == BME280_ID
        h1, h = 0, bytes(7)
        if self._has_humidity:
            h1 = self._bus.read_byte_data(self._address, CALIBRATION_H1)
            h = bytes(self._bus.read_i2c_block_data(self._address, CALIBRATION_H2, 7))
        calibration = Calibration.decode(tp, h1, h)
        if not calibration.plausible():
            return "calibration data unreadable (all zeros or ones)"
        return calibration

    def _measure(self) -> Reading:
        if self._calibration is None:
            setup = self._setup()
            if isinstance(setup, str):
                return self._fault(setup)
            self._calibration = setup
        cal = self._calibration
        if self._has_humidity:
            self._bus.write_byte_data(self._address, CTRL_HUM, OVERSAMPLE_X1)
        self._bus.write_byte_data(self._address, CTRL_MEAS, CTRL_MEAS_FORCED)
        self._sleep(MEASURE_WAIT_S)
        for _ in range(STATUS_POLLS):
            if not self._bus.read_byte_data(self._address, STATUS) & STATUS_MEASURING:
                break
            self._sleep(STATUS_POLL_S)
        else:
            return self._fault("measurement did not finish")
        raw = self._bus.read_i2c_block_data(
            self._address, TEMPERATURE_DATA, 5 if self._has_humidity else 3
        )
        adc_t = (raw[0] << 12) | (raw[1] << 4) | (raw[2] >> 4)
        if adc_t == ADC_T_RESET:
            return self._fault("no measurement (temperature register holds its reset value)")
        celsius, t_fine = compensate_temperature(adc_t, cal)
        celsius = round(celsius, 2)  # the chip's resolution
        problem = OPERATING_RANGE.problem(celsius)
        if problem is not None:
            return self._fault(problem)
        self._read_humidity(raw, t_fine, cal)
        return Reading(self.name, celsius)

    def _read_humidity(self, raw: list[int], t_fine: float, cal: Calibration) -> None:
        if not self._has_humidity:
            self.humidity = fault("humidity", self.label, "a BMP280 has no humidity sensor")
            return
        adc_h = (raw[3] << 8) | raw[4]
        if adc_h == ADC_H_RESET:
            self.humidity = fault("humidity", self.label, "no humidity measurement")
            return
        self.humidity = Reading("humidity", round(compensate_humidity(adc_h, t_fine, cal), 2))

    def close(self) -> None:
        self._bus.close()


# --- The fake chip -----------------------------------------------------------------

#: Trimming values of a typical part (temperature ones from the datasheet's worked example).
TYPICAL_CALIBRATION = Calibration(
    t1=27504, t2=26435, t3=-1000, h1=75, h2=362, h3=0, h4=313, h5=50, h6=30
)
#: Pressure trimming (not used by the driver, present so the register map is complete).
_TYPICAL_PRESSURE = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)


def _t_fine_int32(adc_t: int, cal: Calibration) -> int:
    """The datasheet's integer temperature formula (4.2.3), independent of the driver's."""
    var1 = (((adc_t >> 3) - (cal.t1 << 1)) * cal.t2) >> 11
    var2 = (((((adc_t >> 4) - cal.t1) * ((adc_t >> 4) - cal.t1)) >> 12) * cal.t3) >> 14
    return var1 + var2


def _humidity_from_adc(adc_h: int, t_fine: int, cal: Calibration) -> float:
    x = float(t_fine - 76800)
    scale = cal.h2 / 65536.0 * (1.0 + cal.h6 / 67108864.0 * x * (1.0 + cal.h3 / 67108864.0 * x))
    value = (adc_h - (cal.h4 * 64.0 + cal.h5 / 16384.0 * x)) * scale
    return value * (1.0 - cal.h1 * value / 524288.0)


def _smallest(limit: int, reaches: Callable[[int], bool]) -> int:
    """The smallest n in [0, limit] with reaches(n) (reaches is monotonic), else limit."""
    low, high = 0, limit
    while low < high:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle + 1
    return low


class FakeBme280(FakeI2cDevice):
    """A BME280 at register level. Set ``temperature_c``, ``humidity``, ``fail``.

    ``chip_id`` = 0x58 makes it a BMP280; ``busy_polls`` keeps the measuring bit
    set for that many status reads; ``ignore_trigger`` makes it miss the forced
    mode write so its data registers keep the last sample (a frozen sensor).
    """

    def __init__(
        self,
        temperature_c: float = 21.5,
        humidity: float = 45.0,
        *,
        chip_id: int = BME280_ID,
        calibration: Calibration = TYPICAL_CALIBRATION,
    ) -> None:
        self.temperature_c = temperature_c
        self.humidity = humidity
        self.chip_id = chip_id
        self.calibration = calibration
        self.busy_polls = 0
        self.ignore_trigger = False
        self.measurements = 0
        self.registers = bytearray(256)
        self._pointer = 0
        self._busy = 0
        self._reset()

    def _reset(self) -> None:
        cal = self.calibration
        self.registers[:] = bytes(256)
        self.registers[CHIP_ID_REGISTER] = self.chip_id
        tp = struct.pack("<Hhh", cal.t1, cal.t2, cal.t3) + struct.pack(
            "<Hhhhhhhhh", *_TYPICAL_PRESSURE
        )
        self.registers[CALIBRATION_TP : CALIBRATION_TP + 24] = tp
        if self.chip_id == BME280_ID:
            self.registers[CALIBRATION_H1] = cal.h1
            h4, h5 = cal.h4 & 0xFFF, cal.h5 & 0xFFF
            packed = struct.pack(
                "<hBBBBb",
                cal.h2,
                cal.h3,
                h4 >> 4,
                (h4 & 0x0F) | ((h5 & 0x0F) << 4),
                h5 >> 4,
                cal.h6,
            )
            self.registers[CALIBRATION_H2 : CALIBRATION_H2 + 7] = packed
        # Data registers power up holding 0x80000 (pressure, temperature) and 0x8000 (humidity).
        self.registers[0xF7:0xFF] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])

    def power_cycle(self) -> None:
        """Lose power and come back: sleep mode, reset data registers."""
        self._reset()
        self._busy = 0

    def write(self, data: bytes) -> None:
        # Writes are (register, value) pairs; the first byte alone just sets the pointer.
        self._pointer = data[0]
        for register, value in zip(data[::2], data[1::2], strict=False):
            self._write_register(register, value)

    def read(self, length: int) -> bytes:
        addresses = [(self._pointer + i) & 0xFF for i in range(length)]
        data = bytearray(self.registers[a] for a in addresses)
        if STATUS in addresses:
            data[addresses.index(STATUS)] = STATUS_MEASURING if self._busy else 0
            self._busy = max(0, self._busy - 1)
        return bytes(data)

    def _write_register(self, register: int, value: int) -> None:
        if register == RESET_REGISTER:
            if value == RESET_WORD:
                self._reset()
            return
        if register not in (CTRL_HUM, CTRL_MEAS, 0xF5):
            return  # read-only registers ignore writes
        self.registers[register] = value
        if register == CTRL_MEAS and value & 0b11 in (0b01, 0b10) and not self.ignore_trigger:
            self._convert(value)

    def _convert(self, ctrl_meas: int) -> None:
        self.measurements += 1
        self._busy = self.busy_polls
        cal = self.calibration
        adc_t = ADC_T_RESET
        if ctrl_meas >> 5:
            target = self.temperature_c * 5120.0
            adc_t = _smallest(0xFFFFF, lambda adc: _t_fine_int32(adc, cal) >= target)
        self.registers[0xFA] = adc_t >> 12
        self.registers[0xFB] = (adc_t >> 4) & 0xFF
        self.registers[0xFC] = (adc_t & 0x0F) << 4
        adc_h = ADC_H_RESET
        if self.chip_id == BME280_ID and self.registers[CTRL_HUM] & 0b111:
            t_fine = _t_fine_int32(adc_t, cal)
            adc_h = _smallest(
                0xFFFF, lambda adc: _humidity_from_adc(adc, t_fine, cal) >= self.humidity
            )
        self.registers[0xFD] = adc_h >> 8
        self.registers[0xFE] = adc_h & 0xFF
