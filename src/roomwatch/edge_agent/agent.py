"""The room agent's core loop: pin edges and ticks in, relay and messages out.

Safety first, in every step: the state machine's hardware actions (permit,
alarm) are carried out before anything is published, in the thread that saw
the edge, and never wait for the network.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from roomwatch import __version__
from roomwatch.core import room, wire
from roomwatch.core.clock import Clock
from roomwatch.edge_agent.devices import RoomDevices
from roomwatch.edge_agent.sequence import SequenceStore
from roomwatch.firmware_config.schema import AgentConfig

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> object: ...


class RoomAgent:
    """One room: its devices, its state machine, and what it tells the collector."""

    def __init__(
        self,
        config: AgentConfig,
        devices: RoomDevices,
        sequence: SequenceStore,
        clock: Clock,
        publisher: Publisher,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.config = config
        self.devices = devices
        self.clock = clock
        self._sequence = sequence
        self._publisher = publisher
        self._new_id = new_id
        self._lock = threading.RLock()
        self.settings = room.RoomSettings(
            site=config.site,
            room=config.room,
            fitted=devices.fitted,
            occupancy_hold_s=config.timing.occupancy_hold_s,
            empty_debounce_s=config.timing.empty_debounce_s,
        )
        self.state = room.initial_state(clock.now())
        self._last_telemetry: datetime | None = None
        self.digest = config.digest()

    # ------------------------------------------------------------------ wiring

    def attach(self) -> None:
        """Read every input's present level, then listen for edges."""
        for name, device in self.devices.inputs.items():
            device.on_change(self._input_handler(name))
            self.handle(room.InputChanged(name, device.active))
        if self.devices.staff_button is not None:
            self.devices.staff_button.on_change(self._button)
        self._set_permit(False)
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
        try:
            with self._lock:
                now = self.clock.now()
                self.state, actions = room.step(self.state, event, now, self.settings)
                # Hardware first: the interlock never waits for a publish.
                for action in actions:
                    if isinstance(action, room.SetPermit):
                        self._set_permit(action.granted)
                    elif isinstance(action, room.SetAlarm):
                        self._set_alarm(action.on)
                for action in actions:
                    self._carry_out(action, now)
        except Exception:
            # The interlock loop must outlive any bug; the permit stays as safe as it was.
            log.exception("failed to handle %r", event)
            self._fail_safe()

    def tick(self) -> None:
        """Let time pass: hold times expire, and telemetry goes out on its cadence."""
        self.handle(room.Tick())
        with self._lock:
            now = self.clock.now()
            due = self._last_telemetry is None or (
                (now - self._last_telemetry).total_seconds()
                >= self.config.timing.telemetry_interval_s
            )
        if due:
            self.publish_telemetry()

    def telemetry_due(self) -> None:
        """Publish telemetry on the next tick, whatever the cadence."""
        with self._lock:
            self._last_telemetry = None

    def _carry_out(self, action: room.Action, now: datetime) -> None:
        where = f"{self.config.site}/{self.config.room}"
        match action:
            case room.PublishEvent(type=type_, fields=fields):
                if type_ == "lock_released":
                    log.warning(
                        "%s: lock engaged while the room may be occupied: permit "
                        "withdrawn, alarm sounding",
                        where,
                    )
                elif type_ == "lock_cleared":
                    log.info("%s: lock seen open; alarm off", where)
                self.publish_event(type_, fields)
            case room.PublishEpisode():
                log.info(
                    "%s: episode %s %s (%s)", where, action.episode_id, action.event, action.reason
                )
                self._publish(
                    wire.Episode(
                        id=self._new_id(),
                        seq=self._sequence.next(),
                        ts=now,
                        site=self.config.site,
                        room=self.config.room,
                        event=wire.EpisodeEvent(action.event),
                        episode_id=action.episode_id,
                        started_at=action.started_at,
                        ended_at=action.ended_at,
                        reason=action.reason,
                    )
                )
            case room.PublishTelemetry():
                self.publish_telemetry()
            case _:
                pass

    def _set_permit(self, granted: bool) -> None:
        if self.devices.lock_permit is not None:
            self.devices.lock_permit.set(granted)
        if self.devices.led is not None:
            self.devices.led.set(not granted)  # lit: the room cannot be locked

    def _set_alarm(self, on: bool) -> None:
        if self.devices.sounder is not None:
            self.devices.sounder.set(on)

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

    def _publish(self, message: wire.Message, retain: bool = False) -> None:
        try:
            self._publisher.publish(
                wire.topic_of(message), wire.encode(message), qos=1, retain=retain
            )
        except Exception:
            log.exception("could not queue %s message", message.kind)

    def publish_event(self, type_: str, fields: dict[str, object]) -> None:
        with self._lock:
            self._publish(
                wire.Event.model_validate(
                    {**self._envelope(), "seq": self._sequence.next(), "type": type_, **fields}
                )
            )

    def publish_telemetry(self) -> None:
        with self._lock:
            s = self.state
            message = wire.Telemetry.model_validate(
                {
                    **self._envelope(),
                    "seq": self._sequence.next(),
                    "temperature_c": None,
                    "lux": None,
                    "co2_ppm": None,
                    "occupied": s.occupied,
                    "door_closed": s.value(room.Input.DOOR_CLOSED),
                    "door_locked": s.value(room.Input.DOOR_LOCK),
                    "staff_present": s.value(room.Input.STAFF),
                    "lock_permit": s.permit,
                    "episode_id": s.episode.id if s.episode else None,
                }
            )
            self._last_telemetry = self.clock.now()
            self._publish(message)

    def status(self, state: str) -> wire.Status:
        return wire.Status.model_validate(
            {
                **self._envelope(),
                "state": state,
                "agent_version": __version__,
                "config_digest": self.digest,
                "profile": self.config.profile,
            }
        )

    def command(self, topic_name: str, payload: bytes) -> None:
        """Handle a message on the room's ``cmd`` topic (from paho's thread; never raises)."""
        result = wire.decode(topic_name, payload)
        if isinstance(result, wire.Invalid):
            log.warning("ignored invalid command on %s: %s", topic_name, result.reason)
            return
        message = result.message
        if not isinstance(message, wire.Command):
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
