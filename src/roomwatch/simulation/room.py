"""One simulated room: the real agent on mock pins and fake chips, under the virtual clock.

The scenario's inputs are remembered here, so an agent that crashes and starts
again finds its pins and chips where the room left them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from roomwatch.core.clock import VirtualClock
from roomwatch.core.room import Input
from roomwatch.edge_agent.service import AgentService
from roomwatch.firmware_config import AgentConfig, MqttSettings, parse_model
from roomwatch.firmware_config.schema import Ld2410Sensor
from roomwatch.hardware.gpio import drive, mock_factory
from roomwatch.hardware.mock_environment import MockEnvironment
from roomwatch.simulation.scenario import Inputs, Room, Sensor

log = logging.getLogger(__name__)

#: A room fitted with everything the rules read. No debounce: the pins are driven, not bounced,
#: and gpiozero's debounce runs on real time, which the simulation does not follow.
ROOM_TEMPLATE = """
sensors:
  door_lock:    {kind: contact, pin: 17, bounce_s: null}
  door_closed:  {kind: contact, pin: 27, bounce_s: null}
  motion:       {kind: pir, pin: 22, bounce_s: null}
  staff:        {kind: mat, pin: 23, bounce_s: null}
  staff_button: {kind: button, pin: 24, bounce_s: null}
  temperature:  {kind: bme280}
  light:        {kind: bh1750}
  co2:          {kind: scd4x}
outputs:
  lock_permit: {pin: 16}
  sounder:     {pin: 20}
  led:         {pin: 21}
timing:
  occupancy_hold_s: 30
  empty_debounce_s: 60
"""

#: Scenario input -> the agent's input it drives.
PINS = {
    "occupied": Input.MOTION,
    "door_closed": Input.DOOR_CLOSED,
    "door_locked": Input.DOOR_LOCK,
    "staff_present": Input.STAFF,
}
#: At one instant the agent still sees a step's inputs one by one, each edge its own
#: telemetry. Changes that make the room safer (staff arriving, the door opening, the lock
#: drawn back) and the air go first, so a step never shows a moment that never was (staff
#: gone while the door was still shut); then people arrive or leave, doors close, locks close.
SAFER = {"staff_present": True, "door_closed": False, "door_locked": False}
APPLY_ORDER = (
    "staff_present",
    "door_locked",
    "door_closed",
    "temperature_c",
    "lux",
    "co2_ppm",
    "occupied",
)


def apply_order(given: dict[str, Any]) -> list[str]:
    """The named inputs in the order they are applied (see ``SAFER``)."""
    named = [n for n in APPLY_ORDER if n in given]
    return sorted(named, key=lambda n: 0 if n not in SAFER or SAFER[n] == given[n] else 1)


#: Scenario input -> the fake chip's quantity.
QUANTITIES = {"temperature_c": "temperature_c", "lux": "lux", "co2_ppm": "co2_ppm"}
#: A scenario's sensor -> the quantity its chip measures.
STUCK_QUANTITY = {Sensor.TEMPERATURE: "temperature_c", Sensor.LIGHT: "lux", Sensor.CO2: "co2_ppm"}


#: The mmWave module a room with ``presence: true`` has (on a fake serial port).
PRESENCE_SENSOR = Ld2410Sensor(kind="ld2410", port="/dev/ttyAMA0")


def agent_config(spec: Room, mqtt: MqttSettings, state_dir: Path) -> AgentConfig:
    config = parse_model(ROOM_TEMPLATE, AgentConfig, "simulated room")
    sensors = config.sensors
    if spec.presence:
        sensors = sensors.model_copy(update={"presence": PRESENCE_SENSOR})
    return config.model_copy(
        update={
            "sensors": sensors,
            "site": spec.site,
            "room": spec.id,
            "profile": spec.profile,
            "student_band": spec.student_band,
            "mqtt": mqtt,
            "state_dir": state_dir,
        }
    )


class SimRoom:
    def __init__(self, spec: Room, clock: VirtualClock, mqtt: MqttSettings, state_dir: Path):
        self.spec = spec
        self.key = (spec.site, spec.id)
        self.clock = clock
        self.config = agent_config(spec, mqtt, state_dir)
        self._epoch = clock.now()
        self.values: dict[str, Any] = {
            "occupied": False,
            "door_closed": False,
            "door_locked": False,
            "staff_present": False,
            "temperature_c": 21.0,
            "lux": 320.0,
            "co2_ppm": 600.0,
        }
        self.failing: set[Sensor] = set()
        self.stuck_sensors: set[Sensor] = set()
        self._last_seq = -1
        self.service: AgentService | None = None
        self.environment: MockEnvironment | None = None

    @property
    def running(self) -> bool:
        return self.service is not None

    def _monotonic(self) -> float:
        """The drivers' clock (measurement waits, data freshness): virtual too."""
        return (self.clock.now() - self._epoch).total_seconds()

    # ----------------------------------------------------------- life

    def start(self) -> AgentService:
        """A new agent process: fresh pins and chips set to the room as it is now."""
        factory = mock_factory()
        # Seeded by the room: its chips stray the same way in every run (and after a restart).
        environment = MockEnvironment(
            self.config.sensors,
            self.config.state_dir / "w1",
            noise_seed=f"{self.spec.site}/{self.spec.id}",
        )
        service = AgentService(
            self.config,
            self.clock,
            factory,
            sensors=environment.sampled_sensors(factory, monotonic=self._monotonic),
            schedule=False,
            environment=environment,
        )
        self.service, self.environment = service, environment
        for name in self.values:
            self._apply(name)
        for sensor in self.failing:
            self._fail(sensor, True)
        for sensor in self.stuck_sensors:
            environment.stick(STUCK_QUANTITY[sensor], True)
        service.start()
        return service

    def stop(self) -> None:
        """A clean stop: the agent says it goes offline."""
        if self.service is not None:
            service = self.service
            self._last_seq = service.outbox.last_seq
            service.stop_event.set()
            service.sender.notify()  # wake the sender now, not at its next 1 s poll
            service.stop()
            self._closed()

    def crash(self) -> None:
        """The process dies: no goodbye, so the broker publishes the agent's last will."""
        service = self.service
        if service is None:
            return
        self._last_seq = service.outbox.last_seq
        service.stop_event.set()
        service.sender.notify()  # wake the sender so it sees the stop at once
        service._sender_thread.join(timeout=10)
        service._scheduler.shutdown(wait=False)
        link = service.link
        link._stopping = True  # no reconnects, no "unreachable" warnings
        link.client.loop_stop()
        # Close the socket (and paho's wake-up pair) under paho: the broker sees the
        # connection drop, not a DISCONNECT, and publishes the will.
        link.client._reset_sockets()
        service.devices.close()
        for sensor in [*service.agent.sensors.values(), service.agent.presence]:
            if sensor is not None:
                sensor.close()
        service.outbox.close()
        self._closed()

    def _closed(self) -> None:
        self.service = None
        self.environment = None

    # ---------------------------------------------------------- inputs

    def set(self, inputs: Inputs) -> None:
        """Change the named inputs only."""
        given = inputs.model_dump(exclude_none=True)
        for name in apply_order(given):
            self.values[name] = given[name]
            self._apply(name)

    def press(self) -> None:
        """Press and release the staff button (lost if the agent is down, as in life)."""
        button = self.service.devices.staff_button if self.service else None
        if button is None:
            return
        drive(button, True)
        drive(button, False)

    def sensor_fault(self, sensor: Sensor, failing: bool) -> None:
        if failing:
            self.failing.add(sensor)
        else:
            self.failing.discard(sensor)
        self._fail(sensor, failing)

    def stuck(self, sensor: Sensor, stuck: bool) -> None:
        """The chip repeats its last reading (the agent's stuck-value detector should see it)."""
        if stuck:
            self.stuck_sensors.add(sensor)
        else:
            self.stuck_sensors.discard(sensor)
        if self.environment is not None:
            self.environment.stick(STUCK_QUANTITY[sensor], stuck)

    def _apply(self, name: str) -> None:
        if self.service is None or self.environment is None:
            return
        value = self.values[name]
        if name in PINS:
            drive(self.service.devices.inputs[PINS[name]], bool(value))
            if name == "occupied" and self.spec.presence and Sensor.PRESENCE not in self.failing:
                self.environment.set("present", bool(value))  # the radar sees them too
        else:
            self.environment.set(QUANTITIES[name], float(value))

    def _fail(self, sensor: Sensor, failing: bool) -> None:
        env = self.environment
        if env is None:
            return
        if sensor is Sensor.PRESENCE:
            # The module stops sending frames; back, it sees the room as it is.
            env.set("present", None if failing else bool(self.values["occupied"]))
            return
        chips: dict[Sensor, Any] = {
            Sensor.TEMPERATURE: env.bme280,
            Sensor.LIGHT: env.bh1750,
            Sensor.CO2: env.scd4x,
        }
        chip = chips[sensor]
        if chip is not None:
            chip.fail = failing

    # ------------------------------------------------------------ time

    def tick(self) -> None:
        """One sample interval: read the sensors, then let the state machine see the time."""
        if self.service is not None:
            self.service.agent.sample()
            self.service.agent.tick()

    @property
    def last_seq(self) -> int:
        """The newest sequence number in the outbox (-1: none yet), running or not."""
        return self.service.outbox.last_seq if self.service else self._last_seq

    @property
    def acked(self) -> int:
        return self.service.outbox.acked if self.service else -1
