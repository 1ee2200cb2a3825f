"""The room agent's core loop: pin edges and ticks in, relay and messages out.

Safety first, in every step: the state machine's hardware actions (permit,
alarm) are carried out before anything is queued, in the thread that saw the
edge, and never wait for the network or the disk.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from roomwatch import __version__
from roomwatch.core import room, wire
from roomwatch.core.clock import Clock
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import load_profile
from roomwatch.edge_agent.commands import CommandGate
from roomwatch.edge_agent.devices import RoomDevices
from roomwatch.edge_agent.outbox import Outbox, OutboxError
from roomwatch.edge_agent.wire_bounds import within_contract
from roomwatch.firmware_config.schema import AgentConfig
from roomwatch.hardware.camera import CameraInput, CameraReading, Sighting
from roomwatch.hardware.readings import PresenceReading, PresenceSensor, Reading, SampledSensor

log = logging.getLogger(__name__)


#: Which telemetry field each sampled sensor fills.
TELEMETRY_FIELDS = {"temperature": "temperature_c", "light": "lux", "co2": "co2_ppm"}


class RoomAgent:
    """One room: its devices, its state machine, and what it tells the collector."""

    def __init__(
        self,
        config: AgentConfig,
        devices: RoomDevices,
        outbox: Outbox,
        clock: Clock,
        queued: Callable[[], None] = lambda: None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sensors: Mapping[str, SampledSensor] | None = None,
        presence: PresenceSensor | None = None,
        camera: CameraInput | None = None,
    ) -> None:
        self.config = config
        self.devices = devices
        self.clock = clock
        self.outbox = outbox
        self.sensors = dict(sensors or {})
        self.presence = presence
        self._presence_seen = False
        self.camera = camera
        self.camera_reading: CameraReading | None = None  # numbers only: never a frame
        self._queued = queued
        self._new_id = new_id
        # Two locks, taken hand over hand: the state lock covers a step and its hardware
        # actions; the outbox lock covers writing its messages (an fsync). The next edge
        # takes the state lock while the disk is still busy, so the interlock never waits
        # for the disk, and messages still reach the outbox in the order of the steps.
        self._lock = threading.RLock()
        self._out_lock = threading.Lock()
        self._commands = CommandGate()  # each command id once, inside a time window
        self._depth = 0
        self._pending: list[tuple[type[wire.AgentMessage], dict[str, Any]]] = []
        self.settings = room.RoomSettings(
            site=config.site,
            room=config.room,
            fitted=devices.fitted
            | ({room.Input.PRESENCE} if presence else frozenset())
            | ({room.Input.CAMERA} if camera else frozenset()),
            occupancy_hold_s=config.timing.occupancy_hold_s,
            empty_debounce_s=config.timing.empty_debounce_s,
            rules=WatchRules.from_profile(
                load_profile(config.profile),
                config.student_band,
                config.thresholds.time_limit_min,
                config.thresholds.monitoring_lapse_s,
            ),
        )
        self._alarm = False
        self._attention = False
        self._permit_shown = False
        self._modes: dict[str, str] = {}
        self.state = room.initial_state(clock.now(), self._restored_episode())
        self.readings: dict[str, Reading] = {}
        self._last_telemetry: datetime | None = None
        self.digest = config.digest()
        self.outbox_failures = 0
        self.where = f"{config.site}/{config.room}"

    def _restored_episode(self) -> room.OpenEpisode | None:
        saved = self.outbox.open_episode()
        if saved is None:
            return None
        episode_id, started_at, reason = saved
        log.warning("resuming episode %s, open when the agent last stopped", episode_id)
        return room.OpenEpisode(episode_id, wire.parse_ts(started_at), reason)

    # ------------------------------------------------------------------ wiring

    def attach(self) -> None:
        """Withdraw the permit, read every input's present level, then listen for edges."""
        self._set_permit(False)
        for name, device in self.devices.inputs.items():
            device.on_change(self._input_handler(name))
            self.handle(room.InputChanged(name, device.active))
        if self.devices.staff_button is not None:
            self.devices.staff_button.on_change(self._button)
        self.publish_event(
            "config_loaded", {"config_digest": self.digest, "profile": self.config.profile}
        )

    def _input_handler(self, name: room.Input) -> Callable[[bool], None]:
        def changed(active: bool) -> None:
            self.handle(room.InputChanged(name, active))

        return changed

    def _button(self, pressed: bool) -> None:
        if pressed:
            self.handle(room.StaffButton())

    # --------------------------------------------------------------- the loop

    def handle(self, event: room.RoomEvent) -> None:
        """Feed one event to the state machine and carry out its actions. Never raises."""
        if isinstance(event, room.InputChanged):
            log.debug("%s: %s -> %s", self.where, event.input.value, event.value)
        try:
            with self._locked():
                now = self.clock.now()
                self.state, actions = room.step(self.state, event, now, self.settings)
                # Hardware first: the interlock never waits for the outbox or the network.
                for action in actions:
                    if isinstance(action, room.SetPermit):
                        self._set_permit(action.granted)
                    elif isinstance(action, room.SetAlarm):
                        self._alarm = action.on
                        self._indicate()
                    elif isinstance(action, room.SetAttention):
                        self._attention = action.on
                        self._indicate()
                for action in actions:
                    self._carry_out(action, now)
        except Exception:
            # The interlock loop must outlive any bug; withdrawing the permit is always safe.
            log.exception("failed to handle %r", event)
            self._fail_safe()

    def tick(self) -> None:
        """Let time pass: hold times expire, the permit's watchdog is fed, telemetry goes out
        on its cadence. Sensor reads (which take real time) are :meth:`sample`'s, elsewhere."""
        self.handle(room.Tick())
        with self._locked():  # a deadlocked state machine stops the feed, and the relay drops
            if self.state.permit and self.devices.watchdog_feed is not None:
                self.devices.watchdog_feed.feed()
        with self._locked():
            now = self.clock.now()
            # Half a tick of slack: ticks jitter, and a reading due at 1.000 s must not wait
            # for the tick after the one at 0.998 s.
            slack = self.config.timing.sample_interval_s / 2
            due = self._last_telemetry is None or (
                (now - self._last_telemetry).total_seconds()
                >= self.config.timing.telemetry_interval_s - slack
            )
        if due:
            self.publish_telemetry()

    def sample(self) -> None:
        """Read presence and the sampled sensors; a fault that starts or ends is reported once.

        Reads happen outside the agent's lock: a slow bus never delays the interlock."""
        changed = False
        if self.presence is not None:
            try:
                p = self.presence.read()
            except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the loop
                p = PresenceReading(self.presence.name, None, f"presence: driver error: {exc}")
            present = None if p.present is None else float(p.present)
            changed |= self._note(Reading("presence", present, p.fault))
            if self.state.value(room.Input.PRESENCE) != p.present or not self._presence_seen:
                self._presence_seen = True
                self.handle(room.InputChanged(room.Input.PRESENCE, p.present))
        for name, sensor in self.sensors.items():
            try:
                reading = sensor.read()
            except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the loop
                reading = Reading(name, None, f"{name}: driver error: {exc}")
            changed |= self._note(reading)
        if changed:
            self.telemetry_due()

    def sample_camera(self) -> None:
        """Analyse one camera frame (its own job, at the camera's rate, off the tick).

        Only the sighting, confidence, motion level and luminance come back; a blind or
        failed camera is unknown (occupied, for the permit) and a ``sensor_fault``."""
        if self.camera is None:
            return
        try:
            r = self.camera.read()
        except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the loop
            r = CameraReading(Sighting.UNKNOWN, fault=f"camera: driver error: {exc}")
        with self._locked():
            before, self.camera_reading = self.camera_reading, r
        changed = self._note(Reading("camera", r.luminance, r.fault))
        if before is None or before.sighting is not r.sighting:
            log.info("%s: camera: %s (confidence %.2f)", self.where, r.sighting.value, r.confidence)
        if self.state.value(room.Input.CAMERA) != r.present or before is None:
            self.handle(room.InputChanged(room.Input.CAMERA, r.present))
        if changed:
            self.telemetry_due()

    def _note(self, reading: Reading) -> bool:
        """Keep a reading; report a fault when it starts and when it ends. True on either."""
        with self._locked():
            before = self.readings.get(reading.sensor)
            self.readings[reading.sensor] = reading
        was_faulty = before is not None and before.fault is not None
        if reading.fault is not None and not was_faulty:
            log.warning("%s: sensor fault: %s", self.where, reading.fault)
            self.publish_event("sensor_fault", {"sensor": reading.sensor, "fault": reading.fault})
            return True
        if reading.fault is None and was_faulty:
            log.info("%s: sensor %s reads again", self.where, reading.sensor)
            self.publish_event("sensor_ok", {"sensor": reading.sensor})
            return True
        return before is None

    def telemetry_due(self) -> None:
        """Publish telemetry on the next tick, whatever the cadence."""
        with self._locked():
            self._last_telemetry = None

    def _carry_out(self, action: room.Action, now: datetime) -> None:
        match action:
            case room.PublishEvent(type=type_, fields=fields):
                if type_ == "lock_released":
                    log.warning(
                        "%s: lock engaged while the room may be occupied: "
                        "permit withdrawn, alarm sounding",
                        self.where,
                    )
                elif type_ == "lock_cleared":
                    log.info("%s: lock seen open; alarm off", self.where)
                self.publish_event(type_, fields)
            case room.PublishEpisode(event="checkpoint"):
                log.warning("%s: %s due (%s)", self.where, action.reason, action.episode_id)
                self._queue_episode(action, wire.EpisodeEvent.CHECKPOINT, None)
            case room.PublishEpisode():
                log.info(
                    "%s: episode %s %s (%s)",
                    self.where,
                    action.episode_id,
                    action.event,
                    action.reason,
                )
                if action.event == "started":
                    self.outbox.save_episode(
                        action.episode_id, wire.format_ts(action.started_at), action.reason
                    )
                else:
                    self.outbox.save_episode(None)
                self._queue_episode(action, wire.EpisodeEvent(action.event), action.ended_at)
            case room.PublishTelemetry():
                self.publish_telemetry()
            case _:
                pass

    def _queue_episode(
        self, action: room.PublishEpisode, event: wire.EpisodeEvent, ended_at: datetime | None
    ) -> None:
        """Queue one episode message; a checkpoint is sent with no end."""
        self._queue(
            wire.Episode,
            {
                "event": event,
                "episode_id": action.episode_id,
                "started_at": action.started_at,
                "ended_at": ended_at,
                "reason": action.reason,
            },
        )

    def _set_permit(self, granted: bool) -> None:
        if self.devices.lock_permit is not None:
            self.devices.lock_permit.set(granted)
        if not granted and self.devices.watchdog_feed is not None:
            self.devices.watchdog_feed.set(False)  # no heartbeat while withdrawn
        self._permit_shown = granted
        self._indicate()

    @property
    def indication(self) -> dict[str, str]:
        """What the sounder and LED are doing: on, off, chirp or blink."""
        return dict(self._modes)

    def _indicate(self) -> None:
        """Sounder: steady for a lock alarm, a chirp every 3 s when the episode needs someone.
        LED: lit while the room cannot be locked, blinking when the episode needs someone."""
        sounder = "on" if self._alarm else "chirp" if self._attention else "off"
        led = "blink" if self._attention else "off" if self._permit_shown else "on"
        for name, output, mode in (
            ("sounder", self.devices.sounder, sounder),
            ("led", self.devices.led, led),
        ):
            if output is None or self._modes.get(name) == mode:
                continue
            self._modes[name] = mode
            if mode == "chirp":
                output.blink(0.15, 2.85)
            elif mode == "blink":
                output.blink(0.25, 0.25)
            else:
                output.set(mode == "on")

    def _fail_safe(self) -> None:
        try:
            self._set_permit(False)
        except Exception:
            log.exception("could not withdraw the lock permit")

    # ---------------------------------------------------------------- messages

    def _envelope(self) -> dict[str, object]:
        return {
            "id": self._new_id(),
            "ts": self.clock.now(),
            "site": self.config.site,
            "room": self.config.room,
        }

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock.acquire()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth:
                self._lock.release()
            else:
                items, self._pending = self._pending, []
                if not items:
                    self._lock.release()
                else:
                    self._out_lock.acquire()  # before letting go of the state: order kept
                    self._lock.release()
                    try:
                        self._write(items)
                    finally:
                        self._out_lock.release()

    def _queue(self, model: type[wire.AgentMessage], fields: dict[str, Any]) -> None:
        """Stamp a message now; it is numbered and stored when the state lock is let go."""
        self._pending.append((model, {**self._envelope(), **fields}))

    def _write(self, items: list[tuple[type[wire.AgentMessage], dict[str, Any]]]) -> None:
        for model, fields in items:
            topic = wire.topic(self.config.site, self.config.room, model.kind)

            def build(
                seq: int, model: type[wire.AgentMessage] = model, fields: dict[str, Any] = fields
            ) -> bytes:
                return wire.encode(model.model_validate({**fields, "seq": seq}))

            try:
                self.outbox.append(model.kind.value, topic, build)
            except OutboxError as exc:
                # The interlock goes on regardless; the fault is loud in the log and counted.
                self.outbox_failures += 1
                log.error("%s", exc)
                continue
            except Exception:
                log.exception("%s: could not build a %s message", self.where, model.kind.value)
                continue
            self._queued()

    def publish_event(self, type_: str, fields: Mapping[str, object]) -> None:
        with self._locked():
            self._queue(wire.Event, {"type": type_, **fields})

    def publish_telemetry(self) -> None:
        with self._locked():
            s = self.state
            self._last_telemetry = self.clock.now()
            values: dict[str, Any] = dict.fromkeys(TELEMETRY_FIELDS.values())
            for name, field in TELEMETRY_FIELDS.items():
                reading = self.readings.get(name)
                if reading is not None:
                    values[field] = within_contract(field, reading.value, self.where)
            self._queue(
                wire.Telemetry,
                {
                    **values,
                    "occupied": s.occupied,
                    "door_closed": s.value(room.Input.DOOR_CLOSED),
                    "door_locked": s.value(room.Input.DOOR_LOCK),
                    "staff_present": s.value(room.Input.STAFF),
                    "lock_permit": s.permit,
                    "episode_id": s.episode.id if s.episode else None,
                    "vacated_at": s.vacated_at,
                },
            )

    def status(self, state: str) -> wire.Status:
        return wire.Status.model_validate(
            {
                **self._envelope(),
                "state": state,
                "agent_version": __version__,
                "config_digest": self.digest,
                "profile": self.config.profile,
                "acked_seq": self.outbox.acked,
            }
        )

    # ------------------------------------------------------- collector's words

    def on_message(self, topic_name: str, payload: bytes) -> None:
        """A message on the room's ``cmd`` or ``ack`` topic (paho's thread; never raises)."""
        result = wire.decode(topic_name, payload)
        if isinstance(result, wire.Invalid):
            log.warning("ignored invalid message on %s: %s", topic_name, result.reason)
            return
        message = result.message
        ours = (message.site, message.room) == (self.config.site, self.config.room)
        if isinstance(message, wire.Ack | wire.Command) and not ours:
            # Another room's ack would delete our unsent messages, its command start our
            # episode (a broker that mixes up retained messages, e.g. amqtt 0.12, sends them).
            level = logging.DEBUG if isinstance(message, wire.Ack) else logging.WARNING
            log.log(level, "ignored a %s for %s/%s", message.kind.value, message.site, message.room)
            return
        if isinstance(message, wire.Ack):
            if message.seq > self.outbox.last_seq:
                # An ack for numbers this outbox never produced (it was replaced or wiped):
                # obeying it would delete unsent messages.
                log.warning(
                    "ignored ack %d: this outbox has only reached %d",
                    message.seq,
                    self.outbox.last_seq,
                )
                return
            gone = self.outbox.ack(message.seq)
            log.debug("collector stored up to %d; %d message(s) forgotten", message.seq, gone)
        elif isinstance(message, wire.Command):
            self._command(message)

    def _command(self, message: wire.Command) -> None:
        refused = self._commands.refusal(message, self.clock.now())
        if refused is not None:
            log.warning("ignored %s command %s: %s", message.action.value, message.id, refused)
            return
        match message.action:
            case wire.CommandAction.START_EPISODE:
                self.handle(room.StartEpisode("staff_command"))
            case wire.CommandAction.END_EPISODE:
                self.handle(room.EndEpisode("staff_command"))
            case wire.CommandAction.STAFF_CHECKIN:
                self.publish_event("staff_checkin", {"by": message.by})
            case wire.CommandAction.RELOAD_CONFIG:
                log.info("reload_config requested; restart the service to apply a new file")
