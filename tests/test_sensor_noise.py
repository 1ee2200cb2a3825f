"""The simulator's fake chips stray like real sensors (hardware/wander.py), so the agent's
stuck-value detector sees a calm room as a real room, and a frozen chip as stuck."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from roomwatch.firmware_config.schema import Sensors
from roomwatch.hardware.bh1750 import MAX_LUX
from roomwatch.hardware.faults import STUCK_MIN_DURATION_S
from roomwatch.hardware.mock_environment import MockEnvironment
from roomwatch.hardware.readings import SampledSensor
from roomwatch.hardware.wander import CO2, LIGHT, TEMPERATURE, Wander

FIVE_HOURS = 5 * 3600
BOUND = {"temperature": TEMPERATURE.bound, "co2": CO2.bound}

Fitted = dict[str, dict[str, str]]
I2C: Fitted = {
    "temperature": {"kind": "bme280"},
    "light": {"kind": "bh1750"},
    "co2": {"kind": "scd4x"},
}
ONE_WIRE: Fitted = {**I2C, "temperature": {"kind": "ds18b20"}}


class Room:
    """A MockEnvironment's sensors read once a second on a virtual timeline."""

    def __init__(self, tmp_path: Path, fitted: Fitted, seed: str | None) -> None:
        self.t = 0.0
        self.env = MockEnvironment(Sensors.model_validate(fitted), tmp_path / "w1", seed)
        self.sensors: dict[str, SampledSensor] = self.env.sampled_sensors(
            None, monotonic=lambda: self.t
        )

    def run(self, seconds: int) -> dict[str, list[float | None]]:
        values: dict[str, list[float | None]] = {name: [] for name in self.sensors}
        faults: list[str] = []
        for _ in range(seconds):
            for name, sensor in self.sensors.items():
                reading = sensor.read()
                values[name].append(reading.value)
                if reading.fault:
                    faults.append(f"{self.t:.0f} s: {reading.fault}")
            self.t += 1
        assert faults == []
        return values


def longest_run(values: list[float | None]) -> int:
    run = longest = 1
    for before, after in pairwise(values):
        run = run + 1 if after == before else 1
        longest = max(longest, run)
    return longest


# The DS18B20 fake rewrites a sysfs file per sample (slow): an hour shows its runs, which
# are minutes long (354 s at most over 5 h, measured), far from the detector's 4 h.
@pytest.mark.parametrize(
    ("fitted", "seconds"), [(I2C, FIVE_HOURS), (ONE_WIRE, 3600)], ids=["bme280", "ds18b20"]
)
def test_a_calm_room_for_hours_reads_no_fault(tmp_path: Path, fitted: Fitted, seconds: int) -> None:
    """The issue's case: every chip used to read the same value for 4 h and be called stuck."""
    room = Room(tmp_path, fitted, "demo/room-101")
    room.env.set("lux", 210)  # lights dimmed
    room.env.set("temperature_c", 24.5)
    values = room.run(seconds)
    set_to = {"temperature": 24.5, "light": 210.0, "co2": 600.0}
    for name, seen in values.items():
        numbers = [v for v in seen if v is not None]
        assert len(set(numbers)) > 2, f"{name} barely moves: {sorted(set(numbers))}"
        assert longest_run(seen) < 30 * 60, f"{name} sat on one value for half an hour"
        # Never further than the bound plus the chip's own resolution (a DS18B20 step).
        slack = {"temperature": TEMPERATURE.bound + 0.0625, "light": 0.01 * 210 + 0.84}
        limit = slack.get(name, BOUND.get(name, 0.0))
        assert max(abs(v - set_to[name]) for v in numbers) <= limit, name


def test_the_same_room_strays_the_same_way_every_run(tmp_path: Path) -> None:
    first = Room(tmp_path / "a", I2C, "demo/room-101").run(600)
    again = Room(tmp_path / "b", I2C, "demo/room-101").run(600)
    other = Room(tmp_path / "c", I2C, "demo/room-102").run(600)
    assert first == again
    assert first != other


def test_a_dark_room_reads_zero_and_without_a_seed_values_are_exact(tmp_path: Path) -> None:
    room = Room(tmp_path / "dark", I2C, "demo/room-101")
    room.env.set("lux", 0)
    assert set(room.run(30)["light"]) == {0.0}
    room.env.set("lux", 65535)  # direct sun: the chip clips at its top, exempt from the check
    assert set(room.run(30)["light"]) == {round(MAX_LUX, 1)}
    exact = Room(tmp_path / "exact", I2C, None)
    exact.env.set("co2_ppm", 900)
    assert set(exact.run(30)["co2"]) == {900.0}


def test_a_stuck_chip_repeats_its_last_reading_and_is_reported_after_four_hours(
    tmp_path: Path,
) -> None:
    room = Room(tmp_path, I2C, "demo/room-101")
    room.run(60)
    room.env.stick("co2_ppm", True)
    room.env.set("co2_ppm", 1400)  # the room changes; the stuck chip does not see it
    co2 = room.sensors["co2"]
    frozen = co2.read().value
    seen, fault = set(), None
    while fault is None and room.t < 60 + STUCK_MIN_DURATION_S + 120:
        room.t += 1
        reading = co2.read()
        seen.add(reading.value)
        fault = reading.fault
        for name in ("temperature", "light"):
            assert room.sensors[name].read().fault is None
    assert seen - {None} == {frozen}
    assert fault is not None and "may be stuck" in fault
    assert room.t - 60 == pytest.approx(STUCK_MIN_DURATION_S, abs=2)
    room.env.stick("co2_ppm", False)  # freed: it reads the room again
    room.t += 1
    reading = co2.read()
    assert reading.fault is None and reading.value is not None
    assert abs(reading.value - 1400) <= CO2.bound


def test_the_stray_stays_within_its_bound_over_a_long_run() -> None:
    for spec, value in ((TEMPERATURE, 21.0), (LIGHT, 320.0), (CO2, 600.0)):
        wander = Wander(spec, "bound")
        bound = max(spec.bound * (value if spec.relative else 1), spec.floor * 2)
        strays = [wander.around(value, float(t)) - value for t in range(20000)]
        assert max(abs(s) for s in strays) <= bound + 1e-9
        assert max(abs(s) for s in strays) > bound / 2, "the noise is large enough to see"
