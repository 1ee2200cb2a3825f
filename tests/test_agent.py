"""The agent's shell on the virtual clock: real outbox, mock pins, fake chips; no broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from roomwatch.cli import mock_console
from roomwatch.cli.main import main
from roomwatch.core import room, wire
from roomwatch.core.clock import VirtualClock
from roomwatch.edge_agent.agent import RoomAgent
from roomwatch.edge_agent.commands import COMMAND_MAX_AGE_S, COMMAND_MAX_AHEAD_S
from roomwatch.edge_agent.devices import build_devices
from roomwatch.edge_agent.outbox import Outbox
from roomwatch.firmware_config import AgentConfig, parse_model
from roomwatch.hardware.gpio import drive
from roomwatch.hardware.mock_environment import MockEnvironment
from roomwatch.hardware.readings import Reading

FULL = """
site: oak
room: calm-2
profile: us-mi
sensors:
  door_lock:    {kind: contact, pin: 17}
  door_closed:  {kind: contact, pin: 27}
  motion:       {kind: pir, pin: 22}
  presence:     {kind: ld2410}
  staff:        {kind: mat, pin: 23}
  staff_button: {kind: button, pin: 24}
  temperature:  {kind: bme280}
  light:        {kind: bh1750}
  co2:          {kind: scd4x}
outputs:
  lock_permit: {pin: 16}
  watchdog_feed: {pin: 26}
  sounder:     {pin: 20}
  led:         {pin: 21}
timing: {telemetry_interval_s: 10, occupancy_hold_s: 30, empty_debounce_s: 60}
"""


class Bench:
    def __init__(self, folder: Path, yaml: str = FULL) -> None:
        self.config = parse_model(yaml, AgentConfig)
        self.clock = VirtualClock()
        self.factory = MockFactory()
        self.env = MockEnvironment(self.config.sensors, folder / "w1")
        self.devices = build_devices(self.config, self.factory)
        self.outbox = Outbox(folder / "agent.db")
        self.agent = RoomAgent(
            self.config,
            self.devices,
            self.outbox,
            self.clock,
            sensors=self.env.sampled_sensors(self.factory, monotonic=self.virtual_seconds),
            presence=self.env.presence(monotonic=self.virtual_seconds),
        )
        self.agent.attach()

    def close(self) -> None:
        """Outputs off (their blink threads end), sensors closed."""
        self.devices.close()
        self.outbox.close()

    def virtual_seconds(self) -> float:
        return self.clock.now().timestamp()

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        rows = self.outbox.after(-1, limit=100_000)
        return [json.loads(r.payload) for r in rows if kind is None or r.kind == kind]

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.messages("event") if m["type"] == type_]

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)
            self.agent.sample()
            self.agent.tick()


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    b = Bench(tmp_path)
    yield b
    b.close()


def test_telemetry_carries_the_sensor_readings(bench: Bench) -> None:
    bench.env.set("temperature_c", 23.5)
    bench.env.set("lux", 410)
    bench.env.set("co2_ppm", 900)
    bench.run(11)
    last = bench.messages("telemetry")[-1]
    assert (last["temperature_c"], last["lux"], last["co2_ppm"]) == (
        pytest.approx(23.5, abs=0.01),
        410,
        900,
    )
    assert isinstance(
        wire.decode(wire.topic("oak", "calm-2", "telemetry"), json.dumps(last).encode()),
        wire.Decoded,
    )


def test_a_sensor_fault_is_reported_once_and_its_recovery_too(bench: Bench) -> None:
    bench.run(2)
    assert bench.env.bme280 is not None
    bench.env.bme280.fail = True  # stops answering on the bus
    bench.run(30)
    faults = bench.events("sensor_fault")
    assert len(faults) == 1 and faults[0]["sensor"] == "temperature"
    assert "bme280" in faults[0]["fault"]
    assert bench.messages("telemetry")[-1]["temperature_c"] is None
    bench.env.bme280.fail = False
    bench.run(30)
    assert [e["sensor"] for e in bench.events("sensor_ok")] == ["temperature"]


def test_mmwave_presence_keeps_a_still_child_occupied_without_a_closed_door(bench: Bench) -> None:
    bench.run(40)
    assert bench.agent.state.occupied is False
    bench.env.set("present", True)  # a child sits still: the PIR sees nothing, the radar does
    bench.run(600)
    assert bench.agent.state.occupied is True
    assert bench.agent.state.permit is False
    bench.env.set("present", False)
    bench.run(31)
    assert bench.agent.state.occupied is False


def test_a_silent_presence_sensor_is_unknown_and_withholds_the_permit(bench: Bench) -> None:
    bench.run(40)
    assert bench.agent.state.permit is True
    bench.env.set("present", None)  # the module stops sending frames
    bench.run(5)
    assert bench.agent.state.occupied is None
    assert bench.agent.state.permit is False
    assert [e["sensor"] for e in bench.events("sensor_fault")] == ["presence"]


def test_the_watchdog_is_fed_only_while_the_permit_is_granted(bench: Bench) -> None:
    feed = bench.devices.watchdog_feed
    assert feed is not None
    bench.run(40)
    assert bench.agent.state.permit is True
    assert bench.factory.pin(16).state is True, "the permit line is a steady level"
    fed = feed.feeds
    bench.run(10)
    assert feed.feeds == fed + 10, "one edge per tick while granted"
    drive(bench.devices.inputs[room.Input.MOTION], True)
    assert bench.factory.pin(16).state is False, "withdrawn at once, in the same step"
    bench.run(10)
    assert feed.feeds == fed + 10, "no heartbeat while withdrawn"
    assert bench.factory.pin(26).state is False


def test_commands_start_and_end_episodes_but_stale_ones_are_ignored(bench: Bench) -> None:
    bench.run(40)
    topic = wire.topic("oak", "calm-2", "cmd")

    def command(action: str, age_s: float) -> bytes:
        ts = bench.clock.now() - timedelta(seconds=age_s)
        return wire.encode(
            wire.Command(
                id=f"c{action}{age_s}",
                ts=ts,
                site="oak",
                room="calm-2",
                action=wire.CommandAction(action),
            )
        )

    bench.agent.on_message(topic, command("start_episode", COMMAND_MAX_AGE_S + 1))
    assert bench.agent.state.episode is None, "queued while the agent was away: ignored"
    bench.agent.on_message(topic, command("start_episode", 1))
    assert bench.agent.state.episode is not None
    bench.agent.on_message(topic, command("end_episode", 0))
    assert bench.agent.state.episode is None
    bench.agent.on_message(topic, b"garbage")  # logged, never raised


def test_a_command_runs_once_and_never_from_the_future(bench: Bench) -> None:
    """Issue 14, finding 6: one staff_checkin sent twice ran twice, and a future ts passed
    the staleness check."""
    bench.run(40)
    topic = wire.topic("oak", "calm-2", "cmd")

    def command(action: str, id_: str, offset_s: float = 0) -> bytes:
        ts = bench.clock.now() + timedelta(seconds=offset_s)
        action_ = wire.CommandAction(action)
        return wire.encode(
            wire.Command(id=id_, ts=ts, site="oak", room="calm-2", by="u1", action=action_)
        )

    def checkins() -> int:
        return sum(1 for row in bench.outbox.after(-1, 10_000) if b'"staff_checkin"' in row.payload)

    bench.agent.on_message(topic, command("staff_checkin", "c1"))
    assert checkins() == 1
    bench.clock.advance(5)
    bench.agent.on_message(topic, command("staff_checkin", "c1"))  # redelivered or replayed
    assert checkins() == 1, "the same command id ran twice"
    bench.agent.on_message(topic, command("staff_checkin", "c2"))
    assert checkins() == 2, "a new id runs"
    far = command("start_episode", "c3", offset_s=365 * 86400)
    bench.agent.on_message(topic, far)
    assert bench.agent.state.episode is None, "a command from next year must not run"
    bench.agent.on_message(topic, command("start_episode", "c4", COMMAND_MAX_AHEAD_S + 1))
    assert bench.agent.state.episode is None
    bench.agent.on_message(topic, command("start_episode", "c5", COMMAND_MAX_AHEAD_S - 1))
    assert bench.agent.state.episode is not None, "a little skew is tolerated"


def test_an_ack_beyond_what_this_outbox_produced_is_ignored(bench: Bench) -> None:
    bench.run(20)
    before = len(bench.outbox)
    ack = wire.Ack(id="a", ts=bench.clock.now(), site="oak", room="calm-2", seq=10_000)
    bench.agent.on_message(wire.topic("oak", "calm-2", "ack"), wire.encode(ack))
    assert len(bench.outbox) == before, "obeying it would delete unsent messages"
    ack = wire.Ack(id="b", ts=bench.clock.now(), site="oak", room="calm-2", seq=3)
    bench.agent.on_message(wire.topic("oak", "calm-2", "ack"), wire.encode(ack))
    assert len(bench.outbox) == before - 4


def test_an_episode_open_at_a_crash_resumes_under_its_id(tmp_path: Path) -> None:
    first = Bench(tmp_path)
    first.run(40)
    drive(first.devices.inputs[room.Input.MOTION], True)
    episode = first.agent.state.episode
    assert episode is not None
    first.devices.close()  # the process dies here; the outbox file is what remains
    first.outbox.close()
    second = Bench(tmp_path)
    assert second.agent.state.episode == episode
    assert second.agent.state.permit is False
    second.run(31 + 60)
    ended = [m for m in second.messages("episode") if m["event"] == "ended"]
    assert [e["episode_id"] for e in ended] == [episode.id]


def test_the_mock_console_drives_pins_and_the_room(bench: Bench) -> None:
    assert mock_console.apply(bench.devices, "motion on", bench.env) == "ok: motion on"
    assert bench.agent.state.occupied is True
    assert (
        mock_console.apply(bench.devices, "temperature_c 29", bench.env) == "ok: temperature_c 29"
    )
    assert mock_console.apply(bench.devices, "button", bench.env) == "ok: button pressed"
    assert mock_console.apply(bench.devices, "window on", bench.env).startswith(
        "error: unknown sensor"
    )
    assert mock_console.apply(bench.devices, "lux bright", bench.env).startswith(
        "error: lux needs a number"
    )
    assert mock_console.apply(bench.devices, "presence maybe", bench.env).startswith("error")


def test_agent_check_lists_every_sensor(tmp_path: Path) -> None:
    path = tmp_path / "room.yaml"
    path.write_text(FULL)
    result = CliRunner().invoke(main, ["agent", "--config", str(path), "--check", "--mock"])
    assert result.exit_code == 0, result.output
    for name in ("door_lock", "motion", "presence", "temperature", "light", "co2", "lock_permit"):
        assert name in result.output
    assert "all sensors answer" in result.output


def test_agent_check_reports_a_missing_bus_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "room.yaml"
    path.write_text("sensors:\n  temperature: {kind: bme280, bus: 19}\n")
    result = CliRunner().invoke(main, ["agent", "--config", str(path), "--check"])
    assert result.exit_code == 1
    assert "temperature" in result.output and "FAULT" in result.output


def test_an_overtime_episode_chirps_locally_and_publishes_its_checkpoint(bench: Bench) -> None:
    bench.run(40)
    drive(bench.devices.inputs[room.Input.STAFF], True)
    drive(bench.devices.inputs[room.Input.MOTION], True)  # us-mi, band unknown: 15 min
    bench.run(14 * 60)
    assert bench.agent.indication["sounder"] == "off"
    bench.run(61)
    assert bench.agent.indication == {"sounder": "chirp", "led": "blink"}
    checkpoints = [m for m in bench.messages("episode") if m["event"] == "checkpoint"]
    assert [c["reason"] for c in checkpoints] == ["checkpoint extension_support #1"]
    assert [e["limit_min"] for e in bench.events("time_limit_exceeded")] == [15]
    drive(bench.devices.inputs[room.Input.DOOR_LOCK], True)
    assert bench.agent.indication["sounder"] == "on", "a lock alarm outranks a chirp"
    drive(bench.devices.inputs[room.Input.DOOR_LOCK], False)
    assert bench.agent.indication["sounder"] == "chirp"


class WildLight:
    """A light sensor reading whatever the test says (an LDR with a bad calibration)."""

    name = "light"

    def __init__(self) -> None:
        self.lux = 300.0

    def read(self) -> Reading:
        return Reading("light", self.lux)

    def close(self) -> None:
        pass


def test_a_reading_outside_the_contract_goes_as_null_and_telemetry_goes_on(tmp_path: Path) -> None:
    bench = Bench(tmp_path)
    wild = WildLight()
    bench.agent.sensors["light"] = wild
    wild.lux = 5_000_000.0  # beyond the wire's 1,000,000 lux
    bench.run(11)
    assert bench.messages("telemetry")[-1]["lux"] is None
    wild.lux = 250.0
    bench.run(11)
    assert bench.messages("telemetry")[-1]["lux"] == 250.0


def test_a_mock_room_keeps_measuring_co2(bench: Bench) -> None:
    bench.run(120)
    assert not bench.events("sensor_fault"), bench.events("sensor_fault")
    assert bench.messages("telemetry")[-1]["co2_ppm"] == 600
