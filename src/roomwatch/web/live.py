"""Live updates for open pages, over server-sent events.

The collector calls :meth:`Hub.on_change` on its own threads (paho's, the tick's); the hub
hands the change to the web server's event loop and returns at once. Alert steps go out to
every page immediately; room cards are re-rendered at most every ``flush_s`` (a busy room
sends telemetry every second, and a district has thousands), which keeps a change on
screen within a second.

A page that cannot keep up (its queue fills) is dropped; its browser reconnects and the
page reloads its state, so nothing is shown stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from roomwatch.collector.service import Change
from roomwatch.core import rules

log = logging.getLogger(__name__)

QUEUE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, object]
    #: What replaces parts of ``data`` for a reader who may not act (an auditor's page gets
    #: an alert row without the Acknowledge button).
    readonly: dict[str, object] | None = None

    def encode(self, readonly: bool = False) -> bytes:
        data = {**self.data, **self.readonly} if readonly and self.readonly else self.data
        payload = json.dumps(data, separators=(",", ":"))
        return f"event: {self.name}\ndata: {payload}\n\n".encode()


_KEEPALIVE = Event("keep-alive", {})

RenderRoom = Callable[[tuple[str, str]], Event | None]
RenderAlert = Callable[[rules.Transition], Event]


class Hub:
    def __init__(self, render_room: RenderRoom, render_alert: RenderAlert, flush_s: float = 0.25):
        self._render_room = render_room
        self._render_alert = render_alert
        self._flush_s = flush_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[Event | None]] = set()
        # Rooms changed since the last flush, added from the collector's threads: a lock, not
        # a hop onto the loop per message (thousands a second on a busy collector).
        self._dirty: set[tuple[str, str]] = set()
        self._dirty_lock = threading.Lock()
        self._flusher: asyncio.Task[None] | None = None
        #: Silence longer than this gets a comment line (and a check of the sign-in).
        self.keepalive_s = 15.0

    # -------------------------------------------------------- the server's loop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._flusher = asyncio.create_task(self._flush_forever(), name="live-flush")

    async def stop(self) -> None:
        self._loop = None
        if self._flusher is not None:
            self._flusher.cancel()
        for queue in list(self._clients):
            self._offer(queue, None)

    async def stream(
        self,
        still_signed_in: Callable[[], Awaitable[bool]] | None = None,
        readonly: bool = False,
    ) -> AsyncIterator[bytes]:
        """One page's events; ends when the hub stops, the page falls behind, or (checked
        every ``keepalive_s``) its sign-in has ended: signed out, expired or disabled."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self._clients.add(queue)
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            yield b"retry: 2000\n\n"  # reconnect quickly after a restart
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=self.keepalive_s)
                except TimeoutError:
                    event = _KEEPALIVE
                if event is None:
                    return
                if still_signed_in is not None and loop.time() - checked >= self.keepalive_s:
                    if not await still_signed_in():
                        return
                    checked = loop.time()
                if event is _KEEPALIVE:
                    yield b": keep-alive\n\n"  # proxies close silent connections
                else:
                    yield event.encode(readonly)
        finally:
            self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def _offer(self, queue: asyncio.Queue[Event | None], event: Event | None) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            self._clients.discard(queue)
            log.warning("a live page fell behind and was dropped; it will reconnect")

    def _broadcast(self, event: Event) -> None:
        for queue in list(self._clients):
            self._offer(queue, event)

    def _apply(self, transitions: tuple[rules.Transition, ...]) -> None:
        for transition in transitions:
            try:
                self._broadcast(self._render_alert(transition))
            except Exception:
                log.exception("rendering an alert for live pages failed")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)  # the batching interval itself, not a wait
            with self._dirty_lock:
                changed, self._dirty = self._dirty, set()
            if not self._clients or not changed:
                continue  # nobody is watching: a new page renders in full
            dirty = sorted(changed)
            for key in dirty:
                try:
                    event = self._render_room(key)
                except Exception:
                    log.exception("rendering room %s/%s for live pages failed", *key)
                    continue
                if event is not None:
                    self._broadcast(event)

    # --------------------------------------------------- the collector's threads

    def on_change(self, change: Change) -> None:
        """Collector listener: hand over to the loop, never block, never raise."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if change.rooms:
            with self._dirty_lock:
                self._dirty |= change.rooms
        if not change.transitions:
            return  # room cards go out with the next flush; alert steps go out now
        # RuntimeError: the loop closed between the check and the call (the server stops).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._apply, change.transitions)
