"""Episodes: the list, one episode with its charts, and its incident record form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from roomwatch.collector import incidents
from roomwatch.collector.read import episodes as stored_episodes
from roomwatch.core.incident import FIELD_LABELS, NotificationMethod
from roomwatch.web import auth, charts, services
from roomwatch.web.context import Ctx, PageUser, WebContext, may
from roomwatch.web.pages import record_form
from roomwatch.web.pages.common import render
from roomwatch.web.schemas import EpisodeOut, RoomOut

router = APIRouter(include_in_schema=False)


@router.get("/episodes")
def episodes_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    found = [EpisodeOut.of(e) for e in stored_episodes.episodes(ctx.engine, limit=200)]
    return render(ctx, request, "episodes.html", user, episodes=found)


@router.get("/episodes/{episode_id}")
def episode_page(request: Request, episode_id: str, ctx: Ctx, user: PageUser) -> HTMLResponse:
    detail = services.episode_detail(ctx, episode_id)
    ep = detail.episode
    state = ctx.collector.room_snapshot((ep.site, ep.room))
    room = RoomOut.of(state, ctx.now()) if state else None
    temps = [(s.at, s.temperature_c) for s in detail.samples]
    lux = [(s.at, s.lux) for s in detail.samples]
    return render(
        ctx,
        request,
        "episode.html",
        user,
        detail=detail,
        labels=FIELD_LABELS,
        temperature_chart=charts.line_chart(
            temps,
            "°C",
            low=room.temperature_min_c if room else None,
            high=room.temperature_max_c if room else None,
        ),
        light_chart=charts.line_chart(lux, "lux", low=room.lux_min if room else None),
    )


def _record_form(
    ctx: WebContext,
    request: Request,
    user: auth.Principal,
    episode_id: str,
    values: dict[str, Any],
    version: int,
    errors: list[str],
    status_code: int = 200,
    saved: bool = False,
) -> HTMLResponse:
    ep = stored_episodes.episode(ctx.engine, episode_id)
    if ep is None:
        raise HTTPException(404, f"no episode {episode_id!r}")
    return render(
        ctx,
        request,
        "record.html",
        user,
        status_code,
        episode=EpisodeOut.of(ep),
        values=values,
        record_version=version,
        errors=errors,
        labels=FIELD_LABELS,
        methods=[m.value for m in NotificationMethod],
        saved=saved,
        readonly=not user.may("record"),  # what the form offers, not a permission check
    )


@router.get("/episodes/{episode_id}/record")
def record_page(request: Request, episode_id: str, ctx: Ctx, user: PageUser) -> HTMLResponse:
    stored = services.load_incident(ctx, episode_id)
    missing = stored.record.missing()
    errors = (
        [f"Still to fill in: {', '.join(FIELD_LABELS[m] for m in missing)}."] if missing else []
    )
    values = record_form.form_values(stored.record)
    return _record_form(ctx, request, user, episode_id, values, stored.version, errors)


@router.post("/episodes/{episode_id}/record")
async def save_record(
    request: Request,
    episode_id: str,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("record")],
) -> HTMLResponse:
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str)}
    # Validation and the database work run on the thread pool, off the event loop that
    # carries every open page's live updates.
    return await run_in_threadpool(_save_record, ctx, request, user, episode_id, raw)


def _save_record(
    ctx: WebContext,
    request: Request,
    user: auth.Principal,
    episode_id: str,
    raw: dict[str, str],
) -> HTMLResponse:
    posted = record_form.read(raw)
    values, version = posted.values, posted.version
    if posted.errors or posted.record is None:
        return _record_form(ctx, request, user, episode_id, values, version, posted.errors, 400)
    try:
        stored = services.save_incident(ctx, episode_id, posted.record, user.user_id, version)
    except incidents.StaleRecordError as exc:
        return _record_form(ctx, request, user, episode_id, values, exc.actual, [str(exc)], 409)
    values = record_form.form_values(stored.record)
    return _record_form(ctx, request, user, episode_id, values, stored.version, [], 200, True)
