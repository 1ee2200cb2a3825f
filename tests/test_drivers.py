"""Sensor drivers, each driven through its stateful fake on a virtual clock."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockChargingPin, MockFactory
from hypothesis import given
from hypothesis import strategies as st

from roomwatch.firmware_config.schema import Sensors
from roomwatch.hardware.bh1750 import Bh1750, FakeBh1750
from roomwatch.hardware.bme280 import (
    Bme280,
    Calibration,
    FakeBme280,
    compensate_temperature,
)
from roomwatch.hardware.faults import RangeCheck, StuckDetector
from roomwatch.hardware.i2c import FakeI2cBus, I2cBus, read_bytes, write_bytes
from roomwatch.hardware.ld2410 import (
    HEADER,
    Ld2410,
    Ld2410Frame,
    Ld2410Parser,
    SerialPort,
    TargetState,
    encode_frame,
)
from roomwatch.hardware.ld2410 import FakeSerial as FakeSerialPort
from roomwatch.hardware.light import LdrLight
from roomwatch.hardware.onewire import Ds18b20, FakeDs18b20
from roomwatch.hardware.readings import Reading
from roomwatch.hardware.scd4x import (
    GET_DATA_READY_STATUS,
    START_PERIODIC_MEASUREMENT,
    STOP_PERIODIC_MEASUREMENT,
    FakeScd4x,
    Scd4x,
    crc8,
)
from roomwatch.hardware.sensors import (
    PendingSensor,
    StuckGuard,
    build_presence,
    build_sampled_sensors,
)

SENSOR_ID = "28-0316a2795bff"
HOUR = 3600.0


class VirtualClock:
    """``monotonic`` and ``sleep`` for drivers: sleeping advances time at once."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


# --- faults.py ---------------------------------------------------------------------


def test_range_check_accepts_inside_and_names_the_range_outside() -> None:
    check = RangeCheck(-55, 125, " °C")
    assert check.problem(21.5) is None
    assert check.problem(-55) is None
    assert check.problem(125.5) == "125.5 °C is outside the sensor's range -55..125 °C"
    assert check.problem(math.nan) is not None
    assert check.problem(math.inf) is not None


def test_stuck_defaults_do_not_fire_on_a_steady_room() -> None:
    detector = StuckDetector()
    # A DS18B20 holding one 1/16 °C step for 3.5 hours, sampled every second.
    assert not any(detector.observe(21.5625, float(t)) for t in range(int(3.5 * HOUR)))


def test_stuck_fires_after_four_hours_and_clears_on_a_change() -> None:
    detector = StuckDetector()
    flags = [detector.observe(19.0, minute * 60.0) for minute in range(241)]
    assert not any(flags[:240])
    assert flags[240]
    assert "unchanged at 19 for 4.0 h" in detector.describe(240 * 60.0)
    assert not detector.observe(19.0625, 241 * 60.0)


def test_stuck_needs_enough_samples_not_just_time() -> None:
    detector = StuckDetector()
    assert not detector.observe(20.0, 0.0)
    assert not detector.observe(20.0, 10 * HOUR)  # an agent paused for ten hours


def test_stuck_ignores_exempt_range_ends() -> None:
    detector = StuckDetector(min_samples=3, min_duration_s=10, exempt=frozenset({0.0}))
    assert not any(detector.observe(0.0, float(t)) for t in range(100))


def test_stuck_restarts_when_time_goes_backwards() -> None:
    detector = StuckDetector(min_samples=3, min_duration_s=10)
    for t in (0.0, 5.0, 11.0):
        detector.observe(7.0, t)
    assert detector.observe(7.0, 12.0)
    assert not detector.observe(7.0, 1.0)


# --- onewire.py --------------------------------------------------------------------


def test_ds18b20_reads_the_only_sensor(tmp_path: Path) -> None:
    FakeDs18b20(tmp_path, SENSOR_ID, temperature_c=21.4375)
    sensor = Ds18b20(base=tmp_path)
    assert sensor.read() == Reading("temperature", 21.437)
    assert sensor.label == f"ds18b20 {SENSOR_ID}"


def test_ds18b20_negative_temperature(tmp_path: Path) -> None:
    fake = FakeDs18b20(tmp_path, SENSOR_ID)
    fake.temperature_c = -10.0625
    assert Ds18b20(SENSOR_ID, base=tmp_path).read().value == -10.062


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"crc_ok": False}, "CRC check failed"),
        ({"power_on_value": True}, "reads 85 °C, the power-on value: conversion did not run"),
        ({"temperature_c": 127.9375}, "127.937 °C is outside the sensor's range -55..125 °C"),
        ({"answering": False}, "all-zero scratchpad: sensor not answering"),
        ({"readable": False}, "cannot read w1_slave: Is a directory"),
        ({"present": False}, "not found in {base}"),
    ],
)
def test_ds18b20_faults(tmp_path: Path, change: dict[str, object], cause: str) -> None:
    fake = FakeDs18b20(tmp_path, SENSOR_ID)
    for attribute, value in change.items():
        setattr(fake, attribute, value)
    reading = Ds18b20(SENSOR_ID, base=tmp_path).read()
    assert reading.value is None
    assert reading.fault is not None
    prefix = f"temperature (ds18b20 {SENSOR_ID}): "
    assert reading.fault.startswith(prefix + cause.format(base=tmp_path))


def test_ds18b20_crc_fault_message_is_exact(tmp_path: Path) -> None:
    FakeDs18b20(tmp_path, SENSOR_ID).crc_ok = False
    reading = Ds18b20(SENSOR_ID, base=tmp_path).read()
    assert reading.fault == f"temperature (ds18b20 {SENSOR_ID}): CRC check failed"


def test_ds18b20_none_or_several(tmp_path: Path) -> None:
    sensor = Ds18b20(base=tmp_path / "missing")
    assert "no DS18B20 found" in str(sensor.read().fault)
    FakeDs18b20(tmp_path, "28-000000000001")
    FakeDs18b20(tmp_path, "28-000000000002")
    fault = Ds18b20(base=tmp_path).read().fault
    assert fault == (
        "temperature (ds18b20): 2 DS18B20 found (28-000000000001, 28-000000000002): "
        "set device_id to choose one"
    )


def test_ds18b20_garbage_file(tmp_path: Path) -> None:
    folder = tmp_path / SENSOR_ID
    folder.mkdir()
    (folder / "w1_slave").write_text("\x00\xff garbage")
    assert "unexpected w1_slave contents" in str(Ds18b20(base=tmp_path).read().fault)


def test_ds18b20_goes_away_and_comes_back(tmp_path: Path) -> None:
    fake = FakeDs18b20(tmp_path, SENSOR_ID, temperature_c=22.0)
    sensor = Ds18b20(base=tmp_path)
    assert sensor.read().value == 22.0
    fake.present = False
    assert sensor.read().fault is not None
    fake.present = True
    fake.temperature_c = 23.0
    assert sensor.read().value == 23.0


# --- i2c.py ------------------------------------------------------------------------


def test_fake_bus_answers_like_linux() -> None:
    bus = FakeI2cBus()
    with pytest.raises(OSError, match="Remote I/O") as missing:
        bus.read_byte_data(0x76, 0xD0)
    assert missing.value.errno == 121
    fake = bus.add(0x23, FakeBh1750(lux=120))
    other = bus.share()
    write_bytes(other, 0x23, bytes([0x01, 0x10]))
    assert read_bytes(other, 0x23, 2) == (144).to_bytes(2, "big")
    fake.fail = True
    with pytest.raises(OSError, match="Remote I/O") as failing:
        read_bytes(bus, 0x23, 2)
    assert failing.value.errno == 121
    bus.close()
    other.close()
    with pytest.raises(OSError, match="closed") as closed:
        bus.write_byte(0x23, 0x01)
    assert closed.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="32"):
        FakeI2cBus().read_i2c_block_data(0x76, 0x88, 33)


# --- bme280.py ---------------------------------------------------------------------


def make_bme280(
    clock: VirtualClock, fake: FakeBme280 | None = None
) -> tuple[Bme280, FakeBme280, FakeI2cBus]:
    bus = FakeI2cBus()
    chip = bus.add(0x76, fake or FakeBme280())
    return Bme280(bus, 0x76, bus_number=1, sleep=clock.sleep), chip, bus


def test_bme280_datasheet_example() -> None:
    # Bosch's worked example: adc_T 519888 with these trimming values is 25.08 °C.
    celsius, t_fine = compensate_temperature(519888, Calibration(27504, 26435, -1000))
    assert round(celsius, 2) == 25.08
    assert t_fine == 128422


@pytest.mark.parametrize("celsius", [-40.0, -5.25, 0.0, 18.3, 21.5, 35.77, 84.99])
def test_bme280_reads_what_the_fake_encodes(clock: VirtualClock, celsius: float) -> None:
    sensor, fake, _ = make_bme280(clock)
    fake.temperature_c = celsius
    fake.humidity = 63.2
    reading = sensor.read()
    assert reading.ok
    assert reading.value == pytest.approx(celsius, abs=0.01)
    assert sensor.humidity.value == pytest.approx(63.2, abs=0.05)
    assert fake.registers[0xF4] == 0b001_000_01  # forced mode, T x1, pressure skipped
    assert sensor.label == "bme280 0x76 on i2c-1"


@given(celsius=st.floats(-40, 85), humidity=st.floats(0, 100))
def test_bme280_any_temperature_within_a_hundredth(celsius: float, humidity: float) -> None:
    sensor, fake, _ = make_bme280(VirtualClock())
    fake.temperature_c, fake.humidity = celsius, humidity
    assert sensor.read().value == pytest.approx(celsius, abs=0.01)
    assert sensor.humidity.value == pytest.approx(humidity, abs=0.1)


def test_bme280_negative_12_bit_humidity_trimming(clock: VirtualClock) -> None:
    calibration = Calibration(27504, 26435, -1000, 75, 362, 0, -5, -50, 30)
    fake = FakeBme280(temperature_c=20.0, humidity=55.0, calibration=calibration)
    sensor, _, _ = make_bme280(clock, fake)
    sensor.read()
    assert sensor.humidity.value == pytest.approx(55.0, abs=0.05)


def test_bmp280_gives_temperature_without_humidity(clock: VirtualClock) -> None:
    sensor, _, _ = make_bme280(clock, FakeBme280(temperature_c=19.5, chip_id=0x58))
    assert sensor.read().value == pytest.approx(19.5, abs=0.01)
    assert (
        sensor.humidity.fault == "humidity (bme280 0x76 on i2c-1): a BMP280 has no humidity sensor"
    )


def test_bme280_wrong_chip(clock: VirtualClock) -> None:
    sensor, _, _ = make_bme280(clock, FakeBme280(chip_id=0x55))
    assert sensor.read().fault == (
        "temperature (bme280 0x76 on i2c-1): unexpected chip id 0x55 "
        "(a BME280 says 0x60, a BMP280 0x58)"
    )


def test_bme280_blank_calibration(clock: VirtualClock) -> None:
    sensor, _, _ = make_bme280(clock, FakeBme280(calibration=Calibration(0, 0, 0)))
    assert "calibration data unreadable" in str(sensor.read().fault)


def test_bme280_waits_for_the_measuring_bit(clock: VirtualClock) -> None:
    sensor, fake, _ = make_bme280(clock)
    fake.busy_polls = 2
    assert sensor.read().ok
    fake.busy_polls = 50
    assert sensor.read().fault == "temperature (bme280 0x76 on i2c-1): measurement did not finish"


def test_bme280_out_of_range(clock: VirtualClock) -> None:
    sensor, fake, _ = make_bme280(clock)
    fake.temperature_c = 100.0
    fault = str(sensor.read().fault)
    assert "outside the sensor's range -40..85 °C" in fault


def test_bme280_without_a_measurement(clock: VirtualClock) -> None:
    sensor, fake, _ = make_bme280(clock)
    fake.ignore_trigger = True
    assert "reset value" in str(sensor.read().fault)


def test_bme280_stops_answering_then_comes_back(clock: VirtualClock) -> None:
    sensor, fake, _ = make_bme280(clock)
    assert sensor.read().value == pytest.approx(21.5, abs=0.01)
    fake.fail = True
    reading = sensor.read()
    assert reading.value is None
    assert reading.fault == (
        "temperature (bme280 0x76 on i2c-1): not answering "
        "(no acknowledge on the bus: check wiring, power and address)"
    )
    assert sensor.humidity.fault is not None
    fake.fail = False
    fake.power_cycle()
    fake.temperature_c = 24.0
    assert sensor.read().value == pytest.approx(24.0, abs=0.01)
    assert fake.measurements == 2


# --- bh1750.py ---------------------------------------------------------------------


def test_bh1750_lux(clock: VirtualClock) -> None:
    bus = FakeI2cBus()
    fake = bus.add(0x23, FakeBh1750(lux=500))
    sensor = Bh1750(bus, bus_number=1, sleep=clock.sleep)
    assert sensor.read().value == 500.0
    assert fake.mode == 0x10
    assert clock.slept == [0.18]
    fake.lux = 100_000
    assert sensor.read().value == 54612.5  # saturated: 0xFFFF / 1.2
    sensor.close()
    assert not fake.powered


def test_bh1750_stops_answering_then_comes_back(clock: VirtualClock) -> None:
    bus = FakeI2cBus()
    fake = bus.add(0x23, FakeBh1750(lux=40))
    sensor = Bh1750(bus, sleep=clock.sleep)
    assert sensor.read().value == 40.0
    fake.fail = True
    assert sensor.read().fault == (
        "light (bh1750 0x23): not answering "
        "(no acknowledge on the bus: check wiring, power and address)"
    )
    fake.fail = False
    fake.power_cycle()  # back powered down: the driver must start it again
    assert sensor.read().value == 40.0


# --- scd4x.py ----------------------------------------------------------------------


def make_scd4x(clock: VirtualClock, fake: FakeScd4x | None = None) -> tuple[Scd4x, FakeScd4x]:
    bus = FakeI2cBus()
    chip = bus.add(0x62, fake or FakeScd4x())
    return Scd4x(bus, bus_number=1, sleep=clock.sleep, monotonic=clock), chip


def test_scd4x_crc_matches_the_datasheet_example() -> None:
    assert crc8(bytes([0xBE, 0xEF])) == 0x92


def test_scd4x_starts_and_reads(clock: VirtualClock) -> None:
    sensor, fake = make_scd4x(clock, FakeScd4x(co2_ppm=812))
    assert sensor.read().value == 812.0
    assert fake.commands[:2] == [STOP_PERIODIC_MEASUREMENT, START_PERIODIC_MEASUREMENT]
    assert fake.periodic


def test_scd4x_restarts_a_sensor_already_measuring(clock: VirtualClock) -> None:
    fake = FakeScd4x(co2_ppm=700)
    fake.periodic = True  # the agent restarted; the sensor did not
    sensor, _ = make_scd4x(clock, fake)
    assert sensor.read().value == 700.0


def test_scd4x_keeps_the_latest_sample_until_it_is_stale(clock: VirtualClock) -> None:
    sensor, fake = make_scd4x(clock, FakeScd4x(co2_ppm=650))
    assert sensor.read().value == 650.0
    clock.advance(3)
    assert sensor.read().value == 650.0  # between samples
    fake.co2_ppm = 655
    assert sensor.read().value == 655.0
    clock.advance(21)
    assert sensor.read().fault == "co2 (scd4x 0x62 on i2c-1): no new measurement for 21 s"
    fake.co2_ppm = 660
    assert sensor.read().value == 660.0


def test_scd4x_waiting_for_the_first_sample(clock: VirtualClock) -> None:
    fake = FakeScd4x()
    fake.ready = False
    sensor, _ = make_scd4x(clock, fake)
    assert "waiting for the first measurement" in str(sensor.read().fault)
    clock.advance(30)
    assert "no measurement 30 s after start" in str(sensor.read().fault)


def test_scd4x_bad_crc_is_a_fault(clock: VirtualClock) -> None:
    sensor, fake = make_scd4x(clock)
    fake.corrupt_crc = True
    assert sensor.read().fault == "co2 (scd4x 0x62 on i2c-1): CRC check failed (data-ready status)"
    fake.corrupt_crc = False
    assert sensor.read().value == 600.0


class GarbledHumidityScd4x(FakeScd4x):
    """Corrupts only the last CRC of a measurement, as line noise might."""

    def read(self, length: int) -> bytes:
        data = super().read(length)
        return data[:8] + bytes([data[8] ^ 0x01]) if length == 9 else data


def test_scd4x_bad_crc_in_the_measurement(clock: VirtualClock) -> None:
    sensor, _ = make_scd4x(clock, GarbledHumidityScd4x())
    assert sensor.read().fault == "co2 (scd4x 0x62 on i2c-1): CRC check failed (measurement word 3)"


def test_scd4x_zero_ppm_is_not_a_sample(clock: VirtualClock) -> None:
    sensor, _ = make_scd4x(clock, FakeScd4x(co2_ppm=0))
    assert "0 ppm (not a valid sample)" in str(sensor.read().fault)


def test_scd4x_stops_answering_then_comes_back(clock: VirtualClock) -> None:
    sensor, fake = make_scd4x(clock, FakeScd4x(co2_ppm=900))
    assert sensor.read().value == 900.0
    fake.fail = True
    assert "not answering" in str(sensor.read().fault)
    fake.fail = False
    fake.power_cycle()  # idle again after losing power
    fake.co2_ppm = 910
    assert sensor.read().value == 910.0
    assert fake.commands.count(START_PERIODIC_MEASUREMENT) == 2
    assert fake.commands[-2:] == [GET_DATA_READY_STATUS, 0xEC05]


# --- light.py ----------------------------------------------------------------------


def test_ldr_lux_from_charge_time() -> None:
    factory = MockFactory(pin_class=MockChargingPin)
    factory.pin(4).charge_time = 0.002  # bright: charges in a fifth of the limit
    sensor = LdrLight(4, lux_per_unit=1000, pin_factory=factory)
    try:
        reading = sensor.read()
        assert reading.value is not None
        assert 500 <= reading.value <= 800  # value = 1 - 0.002/0.01, less thread latency
        assert sensor.label == "ldr 4"
    finally:
        sensor.close()
    assert sensor.read().fault == "light (ldr 4): closed"


def test_ldr_dark_reads_zero() -> None:
    factory = MockFactory(pin_class=MockChargingPin)
    factory.pin(17).charge_time = 0.05  # never charges within the 0.01 s limit
    sensor = LdrLight(17, lux_per_unit=250, pin_factory=factory)
    try:
        assert sensor.read().value == 0.0
    finally:
        sensor.close()


# --- ld2410.py ---------------------------------------------------------------------


def frame_of(state: TargetState, engineering: bool = False) -> Ld2410Frame:
    return Ld2410Frame(state, 120, 40, 85, 60, 150, engineering)


def test_ld2410_parses_a_basic_report() -> None:
    report = bytes.fromhex("f4f3f2f1 0d00 02 aa 02 5100 00 0000 3b 0000 55 00 f8f7f6f5")
    frames = Ld2410Parser().feed(report)
    assert frames == [Ld2410Frame(TargetState.STATIONARY, 81, 0, 0, 59, 0)]
    assert frames[0].present


def test_ld2410_parses_an_engineering_report() -> None:
    frames = Ld2410Parser().feed(encode_frame(frame_of(TargetState.BOTH, engineering=True)))
    assert frames == [frame_of(TargetState.BOTH, engineering=True)]


def test_ld2410_frames_split_anywhere() -> None:
    parser = Ld2410Parser()
    stream = encode_frame(frame_of(TargetState.MOVING)) + encode_frame(frame_of(TargetState.NONE))
    got = [frame for byte in stream for frame in parser.feed(bytes([byte]))]
    assert [f.state for f in got] == [TargetState.MOVING, TargetState.NONE]


def test_ld2410_false_header_in_garbage_does_not_swallow_a_frame() -> None:
    parser = Ld2410Parser()
    fake_start = HEADER + (13).to_bytes(2, "little") + b"\x02\xaa\x01"  # then cut off
    real = encode_frame(frame_of(TargetState.STATIONARY))
    assert parser.feed(fake_start + real) == [frame_of(TargetState.STATIONARY)]
    assert parser.skipped == len(fake_start)


def test_ld2410_command_acks_are_skipped() -> None:
    ack = bytes.fromhex("fdfcfbfa 0400 ff01 0000 04030201")
    frames = Ld2410Parser().feed(ack + encode_frame(frame_of(TargetState.NONE)))
    assert frames == [frame_of(TargetState.NONE)]


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_ld2410_parser_never_raises_on_random_bytes(chunks: list[bytes]) -> None:
    parser = Ld2410Parser()
    for chunk in chunks:
        for frame in parser.feed(chunk):
            assert frame.state in TargetState
        assert parser.buffered <= 6 + 64 + 4  # never more than one frame


frames_strategy = st.builds(
    Ld2410Frame,
    state=st.sampled_from(TargetState),
    moving_distance_cm=st.integers(0, 0xFFFF),
    moving_energy=st.integers(0, 100),
    stationary_distance_cm=st.integers(0, 0xFFFF),
    stationary_energy=st.integers(0, 100),
    detection_distance_cm=st.integers(0, 0xFFFF),
    engineering=st.booleans(),
)
garbage_strategy = st.binary(max_size=80).filter(lambda b: HEADER not in b)


@given(
    st.lists(st.tuples(garbage_strategy, frames_strategy), min_size=1, max_size=12),
    garbage_strategy,
    st.lists(st.integers(1, 60), min_size=1, max_size=30),
)
def test_ld2410_always_recovers_every_frame_from_garbage(
    pieces: list[tuple[bytes, Ld2410Frame]], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(garbage + encode_frame(frame) for garbage, frame in pieces) + tail
    parser = Ld2410Parser()
    got: list[Ld2410Frame] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        got += parser.feed(stream[position : position + size])
        position, index = position + size, index + 1
    assert got == [frame for _, frame in pieces]


def test_ld2410_presence_and_staleness(clock: VirtualClock) -> None:
    port = FakeSerialPort()
    sensor = Ld2410(port, port_name="/dev/serial0", monotonic=clock)
    assert sensor.read().present is None  # starting up: unknown, no fault yet
    assert sensor.read().fault is None
    port.feed(encode_frame(frame_of(TargetState.STATIONARY)))
    assert sensor.read().present is True
    clock.advance(1)
    port.feed(encode_frame(frame_of(TargetState.NONE))[:10])  # half a frame so far
    assert sensor.read().present is True
    port.feed(encode_frame(frame_of(TargetState.NONE))[10:])
    assert sensor.read().present is False
    clock.advance(2.5)
    reading = sensor.read()
    assert reading.present is None
    assert reading.fault == (
        "presence (ld2410 /dev/serial0): no data from the module for 2.5 s (check wiring and power)"
    )
    port.feed(encode_frame(frame_of(TargetState.MOVING)))
    assert sensor.read().present is True


def test_ld2410_garbage_only_suggests_the_baud_rate(clock: VirtualClock) -> None:
    port = FakeSerialPort()
    sensor = Ld2410(port, monotonic=clock)
    for _ in range(6):
        port.feed(bytes(range(0x20, 0x60)))
        clock.advance(0.5)
        reading = sensor.read()
    assert reading.present is None
    assert "check the baud rate" in str(reading.fault)


def test_ld2410_missing_port_then_plugged_in(clock: VirtualClock) -> None:
    plugged: list[FakeSerialPort] = []

    def reopen() -> SerialPort:
        if not plugged:
            raise FileNotFoundError(2, "No such file or directory", "/dev/ttyUSB0")
        return plugged[0]

    sensor = Ld2410(
        None, port_name="/dev/ttyUSB0", monotonic=clock, reopen=reopen, open_error="unplugged"
    )
    assert sensor.read().fault == "presence (ld2410 /dev/ttyUSB0): port unavailable: unplugged"
    clock.advance(5)
    assert "No such file or directory" in str(sensor.read().fault)
    plugged.append(FakeSerialPort())
    plugged[0].feed(encode_frame(frame_of(TargetState.MOVING)))
    clock.advance(5)
    assert sensor.read().present is True


def test_ld2410_port_fails_while_reading_then_reopens(clock: VirtualClock) -> None:
    ports = [FakeSerialPort(), FakeSerialPort()]
    sensor = Ld2410(ports[0], monotonic=clock, reopen=lambda: ports[1])
    ports[0].feed(encode_frame(frame_of(TargetState.MOVING)))
    assert sensor.read().present is True
    ports[0].fail = True
    assert sensor.read().fault == "presence (ld2410 serial): serial port failed: Input/output error"
    assert ports[0].closed
    ports[1].feed(encode_frame(frame_of(TargetState.NONE)))
    assert sensor.read().present is False


# --- sensors.py --------------------------------------------------------------------


def all_i2c_config() -> Sensors:
    return Sensors.model_validate(
        {
            "temperature": {"kind": "bme280", "address": 0x77},
            "light": {"kind": "bh1750"},
            "co2": {"kind": "scd4x"},
        }
    )


def test_build_sampled_sensors_on_a_fake_bus(clock: VirtualClock) -> None:
    wires = FakeI2cBus()
    wires.add(0x77, FakeBme280(temperature_c=22.25))
    wires.add(0x23, FakeBh1750(lux=320))
    wires.add(0x62, FakeScd4x(co2_ppm=750))
    sensors = build_sampled_sensors(
        all_i2c_config(),
        None,
        i2c_bus_factory=lambda number: wires.share(),
        monotonic=clock,
        sleep=clock.sleep,
    )
    assert set(sensors) == {"temperature", "light", "co2"}
    values = {name: sensor.read().value for name, sensor in sensors.items()}
    assert values["temperature"] == pytest.approx(22.25, abs=0.01)
    assert values == {"temperature": values["temperature"], "light": 320.0, "co2": 750.0}
    for sensor in sensors.values():
        sensor.close()


def test_build_sampled_sensors_with_a_missing_bus(clock: VirtualClock) -> None:
    wires: list[FakeI2cBus] = []

    def open_bus(number: int) -> I2cBus:
        if not wires:
            raise FileNotFoundError(2, "No such file or directory", f"/dev/i2c-{number}")
        return wires[0].share()

    sensors = build_sampled_sensors(
        all_i2c_config(), None, i2c_bus_factory=open_bus, monotonic=clock, sleep=clock.sleep
    )
    assert set(sensors) == {"temperature", "light", "co2"}
    for sensor in sensors.values():
        assert isinstance(sensor, StuckGuard)
        assert isinstance(sensor.sensor, PendingSensor)
    assert sensors["temperature"].read().fault == (
        "temperature (bme280 0x77 on i2c-1): cannot open: No such file or directory (/dev/i2c-1)"
    )
    # The bus appears (overlay enabled, adapter plugged): the next retry picks it up.
    bus = FakeI2cBus()
    bus.add(0x23, FakeBh1750(lux=80))
    wires.append(bus)
    assert sensors["light"].read().fault is not None  # not yet time to retry
    clock.advance(30)
    assert sensors["light"].read().value == 80.0
    assert "not answering" in str(sensors["co2"].read().fault)  # bus, but no SCD4x on it


def test_build_sampled_sensors_with_ds18b20_and_ldr(tmp_path: Path, clock: VirtualClock) -> None:
    FakeDs18b20(tmp_path, SENSOR_ID, temperature_c=20.5)
    factory = MockFactory(pin_class=MockChargingPin)
    factory.pin(4).charge_time = 0.05  # dark
    config = Sensors.model_validate(
        {"temperature": {"kind": "ds18b20"}, "light": {"kind": "ldr", "pin": 4}}
    )
    sensors = build_sampled_sensors(config, factory, onewire_base=tmp_path, monotonic=clock)
    try:
        assert sensors["temperature"].read().value == 20.5
        assert sensors["light"].read().value == 0.0
        assert "co2" not in sensors
    finally:
        for sensor in sensors.values():
            sensor.close()


def test_build_nothing_configured() -> None:
    assert build_sampled_sensors(Sensors(), None) == {}
    assert build_presence(Sensors()) is None


def test_stuck_guard_on_a_virtual_timeline(clock: VirtualClock) -> None:
    wires = FakeI2cBus()
    fake = wires.add(0x77, FakeBme280(temperature_c=21.0))
    sensors = build_sampled_sensors(
        all_i2c_config().model_copy(update={"light": None, "co2": None}),
        None,
        i2c_bus_factory=lambda number: wires,
        monotonic=clock,
        sleep=clock.sleep,
    )
    temperature = sensors["temperature"]
    assert temperature.read().ok
    fake.ignore_trigger = True  # misses every forced-mode write: data registers freeze
    readings = []
    for _ in range(4 * 60 + 1):
        clock.advance(60)
        readings.append(temperature.read())
    assert all(r.ok for r in readings[:239])
    assert readings[-1].value is None
    assert readings[-1].fault is not None
    assert readings[-1].fault.startswith(
        "temperature (bme280 0x77 on i2c-1): value unchanged at 21"
    )
    assert readings[-1].fault.endswith("sensor may be stuck")
    fake.ignore_trigger = False
    fake.temperature_c = 21.3
    assert temperature.read().value == pytest.approx(21.3, abs=0.01)


def test_dark_room_all_night_is_not_stuck(clock: VirtualClock) -> None:
    wires = FakeI2cBus()
    wires.add(0x23, FakeBh1750(lux=0))
    config = Sensors.model_validate({"light": {"kind": "bh1750"}})
    light = build_sampled_sensors(
        config, None, i2c_bus_factory=lambda n: wires, monotonic=clock, sleep=clock.sleep
    )["light"]
    for _ in range(12 * 60):
        clock.advance(60)
        assert light.read().value == 0.0


def test_build_presence(clock: VirtualClock) -> None:
    config = Sensors.model_validate({"presence": {"kind": "ld2410", "port": "/dev/ttyAMA0"}})
    port = FakeSerialPort()
    opened: list[tuple[str, int]] = []

    def serial_factory(name: str, baudrate: int) -> SerialPort:
        opened.append((name, baudrate))
        return port

    presence = build_presence(config, serial_factory=serial_factory, monotonic=clock)
    assert presence is not None
    assert opened == [("/dev/ttyAMA0", 256000)]
    port.feed(encode_frame(frame_of(TargetState.MOVING)))
    assert presence.read().present is True
    presence.close()
    assert port.closed


def test_build_presence_with_a_missing_port(clock: VirtualClock) -> None:
    config = Sensors.model_validate({"presence": {"kind": "ld2410"}})

    def serial_factory(name: str, baudrate: int) -> SerialPort:
        raise OSError(2, f"could not open port {name}: No such file or directory")

    presence = build_presence(config, serial_factory=serial_factory, monotonic=clock)
    assert presence is not None
    reading = presence.read()
    assert reading.present is None
    assert reading.fault == (
        "presence (ld2410 /dev/serial0): port unavailable: "
        "could not open port /dev/serial0: No such file or directory"
    )
