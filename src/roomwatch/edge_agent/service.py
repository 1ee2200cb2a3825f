"""The agent's composition root: start in order, stop in reverse, one stop event."""

from __future__ import annotations

import logging
import threading

from gpiozero import Factory

from roomwatch.core import wire
from roomwatch.core.clock import Clock
from roomwatch.edge_agent.agent import RoomAgent
from roomwatch.edge_agent.devices import build_devices
from roomwatch.edge_agent.sequence import SequenceStore
from roomwatch.firmware_config.schema import AgentConfig
from roomwatch.transport import MqttLink

log = logging.getLogger(__name__)


class AgentService:
    """Devices, sequence store, MQTT link and the tick loop of one room."""

    def __init__(
        self, config: AgentConfig, clock: Clock, pin_factory: Factory | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.stop_event = threading.Event()
        self.devices = build_devices(config, pin_factory)
        self.sequence = SequenceStore(config.state_dir / "sequence.db")
        cmd_topic = wire.topic(config.site, config.room, wire.Kind.CMD)
        self._status_topic = wire.topic(config.site, config.room, wire.Kind.STATUS)
        self.link = MqttLink(
            config.mqtt,
            f"roomwatch-agent-{config.site}-{config.room}",
            subscriptions=[cmd_topic],
            on_message=self._on_message,
            on_connected=self._on_connected,
        )
        self.agent = RoomAgent(config, self.devices, self.sequence, clock, self.link)
        will = self.agent.status("offline")
        self.link.client.will_set(self._status_topic, wire.encode(will), qos=1, retain=True)
        self._ticker = threading.Thread(target=self._tick_loop, name="agent-ticker", daemon=True)

    def start(self) -> None:
        # The interlock is live before the network: attach() reads the pins first.
        self.agent.attach()
        self.link.start()
        self._ticker.start()
        log.info(
            "agent for %s/%s started (profile %s)",
            self.config.site,
            self.config.room,
            self.config.profile,
        )

    def stop(self) -> None:
        self.stop_event.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        offline = self.agent.status("offline")
        self.link.stop(publish_first=(self._status_topic, wire.encode(offline)))
        self.devices.close()  # withdraws the permit
        self.sequence.close()

    def _on_connected(self) -> None:
        online = self.agent.status("online")
        self.link.publish(self._status_topic, wire.encode(online), qos=1, retain=True)
        # Fresh telemetry on the next tick, not here: paho resends what it queued while
        # offline only after this callback returns, and sequence order must hold.
        self.agent.telemetry_due()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.agent.command(topic, payload)

    def _tick_loop(self) -> None:
        interval = self.config.timing.sample_interval_s
        while not self.stop_event.wait(interval):
            try:
                self.agent.tick()
            except Exception:
                log.exception("tick failed; the loop goes on")
