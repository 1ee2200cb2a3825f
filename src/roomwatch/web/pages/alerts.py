"""The board and the alerts page, and taking an alert."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from roomwatch.collector.read import alerts as stored_alerts
from roomwatch.core.escalation import AcknowledgeError
from roomwatch.web import auth, services
from roomwatch.web.context import Ctx, PageUser, may
from roomwatch.web.pages.common import names, render
from roomwatch.web.schemas import AlertOut, RoomOut

router = APIRouter(include_in_schema=False)


@router.get("/")
def board(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    rooms = [RoomOut.of(s, ctx.now()) for s in ctx.collector.room_snapshots()]
    alerts = [AlertOut.of_open(a) for a in ctx.collector.open_alerts()]
    return render(ctx, request, "board.html", user, rooms=rooms, alerts=alerts, names=names(ctx))


@router.get("/alerts")
def alerts_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    live = [AlertOut.of_open(a) for a in ctx.collector.open_alerts()]
    live_ids = {a.alert_id for a in live}
    history = [
        AlertOut.of_record(r)
        for r in stored_alerts.alerts(ctx.engine, limit=200)
        if r.alert_id not in live_ids
    ]
    return render(ctx, request, "alerts.html", user, alerts=live, history=history, names=names(ctx))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    request: Request,
    alert_id: str,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("acknowledge")],
) -> Response:
    try:
        alert = services.acknowledge_alert(ctx, alert_id, user.user_id)
    except AcknowledgeError:
        # Already taken, or no longer open: show the alert as it now stands.
        record = stored_alerts.alert(ctx.engine, alert_id)
        if record is None:
            raise HTTPException(404, "no such alert") from None
        alert = AlertOut.of_record(record)
    if request.headers.get("hx-request"):
        return render(ctx, request, "_alert_row.html", user, alert=alert, names=names(ctx))
    return RedirectResponse("/alerts", status_code=303)
