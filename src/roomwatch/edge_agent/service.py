"""The agent's composition root: start in order, stop in reverse, one stop event.

Start: devices (permit withdrawn) -> outbox -> state machine attached to the
pins -> MQTT link -> sender -> scheduler (tick, heartbeat). Stop: the reverse,
ending with the outputs off, which withdraws the permit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from apscheduler.schedulers.background import BackgroundScheduler
from gpiozero import Factory

from roomwatch.core import wire
from roomwatch.core.clock import Clock
from roomwatch.edge_agent.agent import RoomAgent
from roomwatch.edge_agent.devices import build_devices
from roomwatch.edge_agent.outbox import Outbox
from roomwatch.edge_agent.sender import OutboxSender
from roomwatch.firmware_config.schema import AgentConfig
from roomwatch.hardware.camera import CameraInput
from roomwatch.hardware.mock_environment import MockEnvironment
from roomwatch.hardware.readings import PresenceSensor, SampledSensor
from roomwatch.hardware.sensors import build_presence, build_sampled_sensors
from roomwatch.transport import MqttLink, systemd

log = logging.getLogger(__name__)

#: The heartbeat is withheld when the last tick is older than this many intervals.
STALE_TICKS = 5


class AgentService:
    """Devices, outbox, MQTT link, sender and scheduler of one room."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Clock,
        pin_factory: Factory | None = None,
        sensors: Mapping[str, SampledSensor] | None = None,
        schedule: bool = True,
        environment: MockEnvironment | None = None,
        camera: CameraInput | None = None,
    ) -> None:
        """``environment``: fake chips for the sensors (``--mock``, tests, the simulator);
        without it, the real buses. ``schedule=False`` leaves ticking and sampling to the
        caller (tests and the simulator, which drive a virtual clock). ``camera``: the
        camera input to use instead of the configured one (tests)."""
        self.config = config
        self._schedule = schedule
        self.clock = clock
        self.stop_event = threading.Event()
        self.devices = build_devices(config, pin_factory)
        self.environment = environment
        sensors, presence = _build_sensors(config, pin_factory, sensors, environment)
        if camera is None and config.sensors.camera is not None:
            camera = _build_camera(config, mock=environment is not None)
        self.outbox = Outbox(config.state_dir / "agent.db", config.outbox_capacity)
        site, room = config.site, config.room
        self._status_topic = wire.topic(site, room, wire.Kind.STATUS)
        self.link = MqttLink(
            config.mqtt,
            f"roomwatch-agent-{site}-{room}",
            subscriptions=[
                wire.topic(site, room, wire.Kind.CMD),
                wire.topic(site, room, wire.Kind.ACK),
            ],
            on_message=self._on_message,
            on_connected=self._on_connected,
            replays_itself=True,
            will=self._will,
        )
        self.sender = OutboxSender(self.outbox, self.link, stall_s=config.timing.ack_stall_s)
        self.agent = RoomAgent(
            config,
            self.devices,
            self.outbox,
            clock,
            queued=self.sender.notify,
            sensors=sensors,
            presence=presence,
            camera=camera,
        )
        self._sender_thread = threading.Thread(
            target=self.sender.run, args=(self.stop_event,), name="outbox-sender", daemon=True
        )
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._last_tick = time.monotonic()

    def start(self) -> None:
        # The interlock is live before the network: attach() reads the pins first.
        self.agent.attach()
        self.link.start()
        self._sender_thread.start()
        interval = self.config.timing.sample_interval_s
        if self._schedule:
            self._scheduler.add_job(
                self._tick, "interval", seconds=interval, id="tick", max_instances=1, coalesce=True
            )
            # Sensor reads take real time (a DS18B20 ~750 ms): their own job, off the tick.
            self._scheduler.add_job(
                self._sample,
                "interval",
                seconds=interval,
                id="sample",
                max_instances=1,
                coalesce=True,
            )
        if self._schedule and self.agent.camera is not None:
            # Frames on their own job and rate: a slow frame never delays the interlock tick.
            self._scheduler.add_job(
                self._sample_camera,
                "interval",
                seconds=self.agent.camera.interval_s,
                id="camera",
                max_instances=1,
                coalesce=True,
            )
        heartbeat = systemd.watchdog_interval_s()
        if heartbeat is not None:
            self._scheduler.add_job(
                self._heartbeat, "interval", seconds=heartbeat, id="heartbeat", max_instances=1
            )
        self._scheduler.start()
        systemd.notify("READY=1")
        log.info(
            "agent for %s/%s started (profile %s, %d message(s) waiting in the outbox)",
            self.config.site,
            self.config.room,
            self.config.profile,
            len(self.outbox),
        )

    def stop(self) -> None:
        systemd.notify("STOPPING=1")
        self.stop_event.set()
        self._scheduler.shutdown(wait=True)
        self._sender_thread.join(timeout=10)
        offline = self.agent.status("offline")
        self.link.stop(publish_first=(self._status_topic, wire.encode(offline)))
        self.devices.close()  # outputs off: the permit is withdrawn
        for sensor in [*self.agent.sensors.values(), self.agent.presence, self.agent.camera]:
            if sensor is not None:
                try:
                    sensor.close()
                except Exception:
                    log.exception("closing sensor %s failed", sensor.name)
        self.outbox.close()

    # ------------------------------------------------------------- callbacks

    def _tick(self) -> None:
        try:
            self.agent.tick()
            self._last_tick = time.monotonic()
        except Exception:
            log.exception("tick failed; the schedule goes on")

    def _sample(self) -> None:
        try:
            self.agent.sample()
        except Exception:
            log.exception("sampling failed; the schedule goes on")

    def _sample_camera(self) -> None:
        try:
            self.agent.sample_camera()
        except Exception:
            log.exception("camera sampling failed; the schedule goes on")

    def _heartbeat(self) -> None:
        """Feed systemd's watchdog only while the interlock loop is alive."""
        age = time.monotonic() - self._last_tick
        if age < STALE_TICKS * self.config.timing.sample_interval_s:
            systemd.notify("WATCHDOG=1")
        else:
            log.error("no tick for %.1f s: withholding the watchdog so systemd restarts us", age)

    def _will(self) -> tuple[str, bytes]:
        return self._status_topic, wire.encode(self.agent.status("offline"))

    def _on_connected(self, session_present: bool) -> None:
        online = self.agent.status("online")
        self.link.publish(self._status_topic, wire.encode(online), qos=1, retain=True)
        if not session_present:
            self.sender.replay()  # the broker may have lost what it held for the collector
        self.agent.telemetry_due()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.agent.on_message(topic, payload)


def _build_sensors(
    config: AgentConfig,
    pin_factory: Factory | None,
    sensors: Mapping[str, SampledSensor] | None,
    environment: MockEnvironment | None,
) -> tuple[Mapping[str, SampledSensor], PresenceSensor | None]:
    """The sampled sensors (``sensors`` if given) and presence: on ``environment``'s fake
    chips if there is one, else on the real buses."""
    if environment is not None:
        sampled = environment.sampled_sensors(pin_factory) if sensors is None else sensors
        return sampled, environment.presence()
    sampled = build_sampled_sensors(config.sensors, pin_factory) if sensors is None else sensors
    return sampled, build_presence(config.sensors)


def _build_camera(config: AgentConfig, mock: bool) -> CameraInput:
    """The configured camera (``mock``: the synthetic empty room); OpenCV is imported here."""
    from roomwatch.hardware.camera.build import build_camera, mock_scene, opencv_missing

    camera_config = config.sensors.camera
    assert camera_config is not None
    problem = opencv_missing()
    if problem is not None:
        log.error("sensors.camera is configured but %s; the camera reads as unknown", problem)
    scene = mock_scene(camera_config) if mock and problem is None else None
    return build_camera(camera_config, config.state_dir, scene=scene)
