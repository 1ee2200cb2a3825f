"""The live board's feed: the collector's changes rendered into events for the hub, the
collector listener (with Web Push) for the app's lifetime, and the /events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from roomwatch.collector.read import people
from roomwatch.collector.service import Change, Collector
from roomwatch.core import rules
from roomwatch.web import auth
from roomwatch.web.context import COOKIE, Ctx, PageUser
from roomwatch.web.live import Event, Hub
from roomwatch.web.push import PushSender
from roomwatch.web.schemas import AlertOut, RoomOut

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class BoardEvents:
    """Renders a room card or an alert row the way the board page shows it."""

    collector: Collector
    templates: Jinja2Templates

    def room(self, key: tuple[str, str]) -> Event | None:
        state = self.collector.room_snapshot(key)
        if state is None:
            return None
        room = RoomOut.of(state, self.collector.clock.now())
        html = self.templates.get_template("_room_card.html").render(room=room)
        return Event("room", {"id": room.dom_id, "html": html})

    def alert(self, t: rules.Transition) -> Event:
        alert = AlertOut.of_open(t.alert, t.state.value)
        names = people.display_names(self.collector.store.engine)
        row = self.templates.get_template("_alert_row.html")
        html = row.render(alert=alert, names=names, user=None)
        readonly = row.render(alert=alert, names=names, user=None, readonly=True)
        return Event(
            "alert",
            {
                "id": alert.dom_id,
                "html": html,
                "alert_id": alert.alert_id,
                "state": alert.state,
                "severity": alert.severity,
                "title": f"{alert.title} in {alert.site}/{alert.room}",
                "message": alert.message,
            },
            readonly={"html": readonly},
        )


def hub(collector: Collector, templates: Jinja2Templates) -> Hub:
    events = BoardEvents(collector, templates)
    return Hub(events.room, events.alert)


def lifespan(
    collector: Collector, hub: Hub, push_sender: PushSender | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """While the app runs, every change the collector makes reaches the hub (and alert steps
    reach Web Push)."""

    def listen(change: Change) -> None:
        hub.on_change(change)
        if push_sender is not None and change.transitions:
            push_sender.on_transitions(change.transitions)

    @asynccontextmanager
    async def running(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        collector.listeners.append(listen)
        try:
            yield
        finally:
            if listen in collector.listeners:
                collector.listeners.remove(listen)
            await hub.stop()

    return running


@router.get("/events")
async def events(request: Request, ctx: Ctx, reader: PageUser) -> Response:
    bearer = request.headers.get("authorization", "")
    cookie = request.cookies.get(COOKIE, "")

    def signed_in() -> bool:
        scheme, _, secret = bearer.partition(" ")
        if scheme.lower() == "bearer" and secret:
            again = auth.from_token(ctx.engine, secret.strip(), ctx.now)
        else:
            again = auth.from_session(ctx.engine, cookie, ctx.now())
        return again is not None and again.user_id == reader.user_id

    async def still_signed_in() -> bool:
        # Asked again now and then: a stream ends when its session or token does.
        return await run_in_threadpool(signed_in)

    return StreamingResponse(
        ctx.hub.stream(still_signed_in, readonly=not reader.may("acknowledge")),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
