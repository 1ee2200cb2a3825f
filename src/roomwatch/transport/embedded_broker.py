"""An MQTT broker inside the process (amqtt), for the demo and for trying Roomwatch out.

amqtt speaks MQTT 3.1.1 only and is far slower than Mosquitto: a district runs
Mosquitto or an EMQX cluster (docs/deployment.md). It runs its own asyncio
loop in a background thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from roomwatch.transport.ports import check_free

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="embedded-broker", daemon=True
        )
        self._broker: Any = None

    def start(self, timeout: float = 10) -> None:
        """Listen on host:port; PortInUseError (an OSError, one line) if it is taken."""
        from amqtt.broker import Broker  # imported here: heavy, and only the demo needs it

        # amqtt's own failure is a chain of tracebacks logged from its loop: ask first.
        check_free(
            self.host,
            self.port,
            "the embedded MQTT broker",
            "stop the program that uses it (another broker? `ss -ltnp` names it) or choose "
            "another port",
        )

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._thread.start()

        async def _start() -> None:
            self._broker = Broker(config, loop=self._loop)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout)
        log.info("embedded MQTT broker on %s:%s", self.host, self.port)

    def stop(self, timeout: float = 10) -> None:
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(
                    timeout
                )
            except Exception:
                log.exception("embedded broker did not shut down cleanly")
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()  # its sockets too: a stopped broker leaves nothing open
