"""The JSON API (/api/v1), described at /api/openapi.json. Same accounts as the pages:
a session cookie (with the CSRF header for changes) or a bearer API token."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from roomwatch.collector import incidents
from roomwatch.collector.read import alerts as stored_alerts
from roomwatch.collector.read import audit_log, people
from roomwatch.collector.read import episodes as stored_episodes
from roomwatch.compliance.render import MEDIA_TYPES, ReportFormat
from roomwatch.compliance.reports import ReportKind
from roomwatch.core.escalation import AcknowledgeError
from roomwatch.web import auth, services
from roomwatch.web.context import ApiUser, Ctx, may, may_read
from roomwatch.web.schemas import (
    ID_PATTERN,
    AlertOut,
    AuditOut,
    EpisodeDetail,
    EpisodeOut,
    MeOut,
    PushSubscriptionIn,
    PushUnsubscribe,
    RecordIn,
    RecordOut,
    RoomOut,
    RoomRegistrationIn,
    TokenIn,
    TokenOut,
)

router = APIRouter(prefix="/api/v1", tags=["api"])

SiteId = Annotated[str, Path(pattern=ID_PATTERN)]
RoomId = Annotated[str, Path(pattern=ID_PATTERN)]
EpisodeId = Annotated[str, Path(min_length=1, max_length=160)]
AlertId = Annotated[str, Path(min_length=1, max_length=256)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/me")
def me(user: ApiUser) -> MeOut:
    return MeOut(
        user_id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
    )


@router.get("/rooms")
def rooms(ctx: Ctx, user: ApiUser) -> list[RoomOut]:
    """Every room the collector has heard from (or an admin registered), live."""
    return [RoomOut.of(s, ctx.now()) for s in ctx.collector.room_snapshots()]


@router.get("/rooms/{site}/{room}", responses={404: {"description": "no such room"}})
def room(site: SiteId, room: RoomId, ctx: Ctx, user: ApiUser) -> RoomOut:
    state = ctx.collector.room_snapshot((site, room))
    if state is None:
        raise HTTPException(404, f"no room {site}/{room}")
    return RoomOut.of(state, ctx.now())


@router.put(
    "/rooms/{site}/{room}",
    responses={422: {"description": "unknown profile"}, 403: {"description": "admins only"}},
)
def register_room(
    site: SiteId,
    room: RoomId,
    body: RoomRegistrationIn,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("register_room")],
) -> RoomOut:
    """Register a room, or change its policy profile and student band."""
    try:
        services.register_room(ctx, site, room, body.profile, body.student_band, user.user_id)
    except services.UnknownProfileError as exc:
        raise HTTPException(422, str(exc)) from None
    state = ctx.collector.room_snapshot((site, room))
    assert state is not None
    return RoomOut.of(state, ctx.now())


@router.get("/alerts")
def alerts(
    ctx: Ctx,
    user: ApiUser,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: Limit = 200,
) -> list[AlertOut]:
    """Newest first. ``open=true``: only alerts not resolved, as the collector holds them now."""
    if open_only:
        return [AlertOut.of_open(a) for a in ctx.collector.open_alerts()[:limit]]
    return [AlertOut.of_record(r) for r in stored_alerts.alerts(ctx.engine, limit=limit)]


@router.post(
    "/alerts/{alert_id}/acknowledge",
    responses={404: {"description": "no open alert with that id"}},
)
def acknowledge(
    alert_id: AlertId, ctx: Ctx, user: Annotated[auth.Principal, may("acknowledge")]
) -> AlertOut:
    """Take an open alert: recorded with who and when; escalation stops."""
    try:
        return services.acknowledge_alert(ctx, alert_id, user.user_id)
    except AcknowledgeError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/episodes")
def episodes(
    ctx: Ctx,
    user: ApiUser,
    site: Annotated[str | None, Query(max_length=64)] = None,
    room: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
) -> list[EpisodeOut]:
    return [EpisodeOut.of(e) for e in stored_episodes.episodes(ctx.engine, site, room, limit)]


@router.get("/episodes/{episode_id}", responses={404: {"description": "no such episode"}})
def episode(episode_id: EpisodeId, ctx: Ctx, user: ApiUser) -> EpisodeDetail:
    """The episode with its timeline (every event and alert step) and its readings."""
    return services.episode_detail(ctx, episode_id)


def _record_out(stored: incidents.StoredIncident) -> RecordOut:
    return RecordOut(
        episode_id=stored.episode_id,
        version=stored.version,
        record=stored.record,
        missing=stored.record.missing(),
        updated_at=stored.updated_at,
        updated_by=stored.updated_by,
    )


@router.get("/episodes/{episode_id}/record", responses={404: {"description": "no such episode"}})
def get_record(episode_id: EpisodeId, ctx: Ctx, user: ApiUser) -> RecordOut:
    return _record_out(services.load_incident(ctx, episode_id))


@router.put(
    "/episodes/{episode_id}/record",
    responses={
        404: {"description": "no such episode"},
        409: {"description": "someone saved since your version; reload"},
    },
)
def save_record(
    episode_id: EpisodeId,
    body: RecordIn,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("record")],
) -> RecordOut:
    """Save the incident record (send the version you loaded; 409 if someone saved since)."""
    try:
        stored = services.save_incident(ctx, episode_id, body.record, user.user_id, body.version)
    except incidents.StaleRecordError as exc:
        raise HTTPException(409, str(exc)) from None
    return _record_out(stored)


@router.get("/audit")
def audit_trail(
    ctx: Ctx,
    user: Annotated[auth.Principal, may_read("read_audit")],
    limit: Limit = 200,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> list[AuditOut]:
    """Newest first; page back with ``before`` (a sequence number)."""
    return [AuditOut.of(e) for e in audit_log.audit_entries(ctx.engine, limit, before)]


@router.get("/push/key")
def push_key(ctx: Ctx, user: ApiUser) -> dict[str, str | None]:
    """The VAPID public key for PushManager.subscribe (null when push is off)."""
    return {"application_server_key": ctx.vapid_public_key}


@router.post("/push/subscriptions", status_code=204, responses={503: {"description": "push off"}})
def subscribe(
    body: PushSubscriptionIn, ctx: Ctx, user: Annotated[auth.Principal, may("push")]
) -> Response:
    if ctx.push is None:
        raise HTTPException(503, "Web Push is not available on this collector")
    ctx.push.subscribe(
        user.user_id, str(body.endpoint), body.keys.p256dh, body.keys.auth, ctx.now()
    )
    return Response(status_code=204)


@router.delete(
    "/push/subscriptions", status_code=204, responses={404: {"description": "none of yours"}}
)
def unsubscribe(
    body: PushUnsubscribe, ctx: Ctx, user: Annotated[auth.Principal, may("push")]
) -> Response:
    """Stop alerts to one device. Only your own subscriptions: another user's endpoint
    answers 404 and stays."""
    if ctx.push is None or not ctx.push.unsubscribe(user.user_id, body.endpoint):
        raise HTTPException(404, "no push subscription of yours with that endpoint")
    return Response(status_code=204)


@router.get("/tokens")
def tokens(ctx: Ctx, user: Annotated[auth.Principal, may("manage_tokens")]) -> list[TokenOut]:
    return [
        TokenOut(
            id=t.id,
            name=t.name,
            user_id=t.user_id,
            created_at=t.created_at,
            last_used_at=t.last_used_at,
            revoked_at=t.revoked_at,
        )
        for t in people.tokens(ctx.engine)
    ]


@router.post("/tokens", status_code=201, responses={404: {"description": "no such user"}})
def issue_token(
    body: TokenIn, ctx: Ctx, user: Annotated[auth.Principal, may("manage_tokens")]
) -> TokenOut:
    """A new API token; its secret is in the answer and nowhere else, ever."""
    try:
        secret, row = auth.issue_token(
            ctx.engine, body.user_id or user.user_id, body.name, user.user_id, ctx.now()
        )
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return TokenOut(
        id=row.id,
        name=row.name,
        user_id=row.user_id,
        created_at=row.created_at,
        last_used_at=None,
        revoked_at=None,
        token=secret,
    )


@router.delete("/tokens/{token_id}", status_code=204, responses={404: {"description": "none"}})
def revoke_token(
    token_id: Annotated[str, Path(max_length=32)],
    ctx: Ctx,
    user: Annotated[auth.Principal, may("manage_tokens")],
) -> Response:
    if not auth.revoke_token(ctx.engine, token_id, user.user_id, ctx.now()):
        raise HTTPException(404, f"no live token {token_id!r}")
    return Response(status_code=204)


@router.get(
    "/reports/{kind}",
    responses={
        200: {"content": {m: {} for m in MEDIA_TYPES.values()}, "description": "the report"},
        403: {"description": "admins and auditors only"},
    },
)
def report(
    kind: ReportKind,
    ctx: Ctx,
    user: Annotated[auth.Principal, may_read("download_reports")],
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    site: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    format: ReportFormat = ReportFormat.JSON,
) -> Response:
    """A compliance report (docs/compliance.md) as CSV, JSON or PDF; the audit chain head it
    was made from is in the X-Audit-Chain-Head header and inside the file."""
    return services.report_file(ctx, kind, site, start, end, format)
