"""The server-rendered pages. Changes are plain form posts (htmx swaps the answer in place
where that helps), each carrying the session's CSRF token."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from roomwatch.collector import incidents
from roomwatch.collector.accounts import UserExistsError
from roomwatch.collector.config import RoomRegistration
from roomwatch.collector.read import alerts as stored_alerts
from roomwatch.collector.read import audit_log, people
from roomwatch.collector.read import episodes as stored_episodes
from roomwatch.collector.read import rooms as stored_rooms
from roomwatch.compliance.render import ReportFormat
from roomwatch.compliance.reports import ReportKind
from roomwatch.core.escalation import AcknowledgeError
from roomwatch.core.incident import FIELD_LABELS, IncidentRecord, NotificationMethod
from roomwatch.core.policy import StudentBand, available_profiles, load_profile
from roomwatch.web import auth, charts, throttle
from roomwatch.web.api import episode_detail, report_file
from roomwatch.web.context import (
    COOKIE,
    Ctx,
    MaybeUser,
    PageUser,
    WebContext,
    may,
    offered_csrf,
    same_origin,
)
from roomwatch.web.schemas import (
    ID_PATTERN,
    AlertOut,
    AuditOut,
    EpisodeOut,
    RoomOut,
    unstorable_fields,
)

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


def render(
    ctx: WebContext,
    request: Request,
    template: str,
    user: auth.Principal | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    return ctx.templates.TemplateResponse(
        request,
        template,
        {"user": user, "vapid_key": ctx.vapid_public_key, **values},
        status_code=status_code,
    )


def _names(ctx: WebContext) -> dict[str, str]:
    return people.display_names(ctx.engine)


# ------------------------------------------------------------------ sign in


@router.get("/login")
def login_page(request: Request, ctx: Ctx) -> HTMLResponse:
    return render(ctx, request, "login.html", None)


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1000)],
) -> Response:
    if not same_origin(request):
        raise HTTPException(403, "sign in from Roomwatch's own sign-in page")
    now = ctx.now()
    # The peer, or the client a trusted local proxy names (uvicorn's proxy headers).
    address = (request.client.host if request.client else "unknown")[:100]
    signed = None
    if username.isprintable():  # a NUL byte would be a database error on PostgreSQL
        lock = throttle.locked(ctx.engine, username, address, now)
        if lock is not None:  # no password is checked while locked
            return render(
                ctx, request, "login.html", None, 429, error=lock.describe(now), username=username
            )
        signed = auth.sign_in(ctx.engine, username, password, ctx.settings.session_hours, now)
        if signed is None:
            lock = throttle.failed(ctx.engine, username, address, now)
            if lock is not None:
                log.warning(
                    "sign-in locked (%s) for %r from %s until %s after repeated failures",
                    lock.scope,
                    username,
                    address,
                    lock.until.isoformat(),
                )
                return render(
                    ctx,
                    request,
                    "login.html",
                    None,
                    429,
                    error=lock.describe(now),
                    username=username,
                )
        else:
            throttle.succeeded(ctx.engine, username, address)
    if signed is None:
        return render(
            ctx,
            request,
            "login.html",
            None,
            401,
            error="Wrong username or password.",
            username=username,
        )
    token, _ = signed
    # A new session each time; the one this browser had before (if any) ends now.
    previous = request.cookies.get(COOKIE)
    if previous:
        auth.sign_out(ctx.engine, previous)
    response = RedirectResponse("/", status_code=303)
    secure = ctx.settings.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https" or (
            request.headers.get("x-forwarded-proto") == "https"
        )
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ctx.settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, user: MaybeUser) -> Response:
    """Every role may sign out (with the session's CSRF token, so no other site can sign
    anyone out); a session that has already ended just loses its cookie."""
    token = request.cookies.get(COOKIE)
    if user is not None and user.csrf_token is not None:
        if not auth.csrf_ok(user, await offered_csrf(request)):
            raise HTTPException(403, "the form is stale or forged (CSRF token); reload the page")
        if token:
            await run_in_threadpool(auth.sign_out, ctx.engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# ------------------------------------------------------------------ the board


@router.get("/")
def board(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    rooms = [RoomOut.of(s, ctx.now()) for s in ctx.collector.room_snapshots()]
    alerts = [AlertOut.of_open(a) for a in ctx.collector.open_alerts()]
    return render(ctx, request, "board.html", user, rooms=rooms, alerts=alerts, names=_names(ctx))


@router.get("/alerts")
def alerts_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    live = [AlertOut.of_open(a) for a in ctx.collector.open_alerts()]
    live_ids = {a.alert_id for a in live}
    history = [
        AlertOut.of_record(r)
        for r in stored_alerts.alerts(ctx.engine, limit=200)
        if r.alert_id not in live_ids
    ]
    return render(
        ctx, request, "alerts.html", user, alerts=live, history=history, names=_names(ctx)
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    request: Request,
    alert_id: str,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("acknowledge")],
) -> Response:
    try:
        transition = ctx.collector.acknowledge(alert_id, user.user_id)
        alert = AlertOut.of_open(transition.alert, transition.state.value)
    except AcknowledgeError:
        record = stored_alerts.alert(ctx.engine, alert_id)
        if record is None:
            raise HTTPException(404, "no such alert") from None
        alert = AlertOut.of_record(record)
    if request.headers.get("hx-request"):
        return render(ctx, request, "_alert_row.html", user, alert=alert, names=_names(ctx))
    return RedirectResponse("/alerts", status_code=303)


# ------------------------------------------------------------------ episodes


@router.get("/episodes")
def episodes_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    found = [EpisodeOut.of(e) for e in stored_episodes.episodes(ctx.engine, limit=200)]
    return render(ctx, request, "episodes.html", user, episodes=found)


@router.get("/episodes/{episode_id}")
def episode_page(request: Request, episode_id: str, ctx: Ctx, user: PageUser) -> HTMLResponse:
    detail = episode_detail(ctx, episode_id)
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
        readonly=not user.may("record"),
    )


def _form_values(record: IncidentRecord) -> dict[str, Any]:
    values = record.model_dump(mode="json")
    at = record.parent_notified_at
    values["parent_notified_at"] = at.isoformat() if at else ""
    return values


@router.get("/episodes/{episode_id}/record")
def record_page(request: Request, episode_id: str, ctx: Ctx, user: PageUser) -> HTMLResponse:
    try:
        stored = incidents.load(ctx.engine, episode_id)
    except incidents.UnknownEpisodeError:
        raise HTTPException(404, f"no episode {episode_id!r}") from None
    missing = stored.record.missing()
    errors = (
        [f"Still to fill in: {', '.join(FIELD_LABELS[m] for m in missing)}."] if missing else []
    )
    return _record_form(
        ctx, request, user, episode_id, _form_values(stored.record), stored.version, errors
    )


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


#: The widest UTC offsets there are (UTC-12 to UTC+14), in minutes.
MAX_OFFSET_MIN = 14 * 60


def _when(local: str, offset_min: str) -> datetime | None:
    """A datetime-local value plus the browser's UTC offset (JS getTimezoneOffset, minutes)."""
    if not local:
        return None
    moment = datetime.fromisoformat(local)
    if moment.tzinfo is not None:
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{local} is not a time anyone notified a parent") from None
    try:
        offset = int(offset_min)
    except ValueError:
        offset = MAX_OFFSET_MIN + 1
    if abs(offset) > MAX_OFFSET_MIN:
        raise ValueError("the time zone of the notification time is unknown; reload the page")
    try:
        return (moment + timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{local} is not a time anyone notified a parent") from None


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
    values: dict[str, Any] = {name: raw.get(name, "").strip() for name in FIELD_LABELS}
    errors: list[str] = []
    try:
        version = int(raw.get("version", ""))
    except ValueError:
        version = -1
        errors.append("The form has no version; reload the page.")
    record: IncidentRecord | None = None
    try:
        fields: dict[str, Any] = dict(values)
        fields["student_ref"] = fields["student_ref"] or None
        fields["student_injury"] = _yes_no(fields["student_injury"])
        fields["staff_injury"] = _yes_no(fields["staff_injury"])
        fields["parent_notification_method"] = fields["parent_notification_method"] or None
        fields["parent_notified_at"] = _when(
            fields["parent_notified_at"], raw.get("tz_offset_min", "")
        )
        record = IncidentRecord.model_validate(fields)
        errors += [
            f"{FIELD_LABELS.get(name, name)}: control characters are not allowed"
            for name in unstorable_fields(record)
        ]
    except ValidationError as exc:
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            errors.append(f"{FIELD_LABELS.get(name, name)}: {e['msg']}")
    except ValueError as exc:
        errors.append(f"{FIELD_LABELS['parent_notified_at']}: {exc}")
    if errors or record is None:
        return _record_form(ctx, request, user, episode_id, values, version, errors, 400)
    try:
        stored = incidents.save(ctx.engine, episode_id, record, user.user_id, version, ctx.now)
    except incidents.UnknownEpisodeError:
        raise HTTPException(404, f"no episode {episode_id!r}") from None
    except incidents.StaleRecordError as exc:
        return _record_form(ctx, request, user, episode_id, values, exc.actual, [str(exc)], 409)
    return _record_form(
        ctx, request, user, episode_id, _form_values(stored.record), stored.version, [], 200, True
    )


# ------------------------------------------------------------------ rooms


@router.get("/rooms")
def rooms_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    live = {
        (s.view.site, s.view.room): RoomOut.of(s, ctx.now()) for s in ctx.collector.room_snapshots()
    }
    return render(
        ctx,
        request,
        "rooms.html",
        user,
        rooms=stored_rooms.rooms(ctx.engine),
        live=live,
        profiles=[load_profile(p) for p in available_profiles()],
        bands=[b.value for b in StudentBand],
        id_pattern=ID_PATTERN[1:-1],
    )


@router.post("/rooms")
def register_room(
    request: Request,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("register_room")],
    site: Annotated[str, Form(pattern=ID_PATTERN)],
    room: Annotated[str, Form(pattern=ID_PATTERN)],
    profile: Annotated[str, Form(max_length=60)] = "",
    student_band: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        settings = RoomRegistration(
            profile=profile or None,
            student_band=StudentBand(student_band) if student_band else None,
        )
    except (ValidationError, ValueError) as exc:
        raise HTTPException(400, f"cannot register {site}/{room}: {exc}") from None
    ctx.collector.register_room(site, room, settings, user.user_id)
    return RedirectResponse("/rooms", status_code=303)


# ------------------------------------------------------------------ audit and account


@router.get("/audit")
def audit_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    if user.role not in auth.CAN_READ_AUDIT:
        raise HTTPException(403, "only admins and auditors read the audit trail")
    entries = [AuditOut.of(e) for e in audit_log.audit_entries(ctx.engine, 500)]
    return render(ctx, request, "audit.html", user, entries=entries, names=_names(ctx))


@router.get("/account")
def account_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    return _account(ctx, request, user)


def _account(
    ctx: WebContext,
    request: Request,
    user: auth.Principal,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    admin = user.may("manage_users")
    return render(
        ctx,
        request,
        "account.html",
        user,
        status_code,
        tokens=people.tokens(ctx.engine) if user.may("manage_tokens") else [],
        users=people.users(ctx.engine),
        locks=throttle.current_locks(ctx.engine, ctx.now()) if admin else [],
        now=ctx.now(),
        **values,
    )


@router.post("/account/unlock")
def unlock_sign_in(
    request: Request,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("manage_users")],
    username: Annotated[str | None, Form(max_length=150)] = None,
    address: Annotated[str | None, Form(max_length=100)] = None,
) -> HTMLResponse:
    """An administrator lifts the sign-in locks naming a user or an address (audited)."""
    if not username and not address:
        raise HTTPException(400, "name a user or an address to unlock")
    lifted = throttle.unlock(
        ctx.engine, user.user_id, ctx.now(), username=username or None, address=address or None
    )
    return _account(ctx, request, user, unlocked=lifted)


@router.post("/account/tokens")
def issue_token(
    request: Request,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("manage_tokens")],
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> HTMLResponse:
    secret, _ = auth.issue_token(ctx.engine, user.user_id, name, user.user_id, ctx.now())
    return _account(ctx, request, user, new_token=secret)


@router.post("/account/users")
def add_user(
    request: Request,
    ctx: Ctx,
    user: Annotated[auth.Principal, may("manage_users")],
    username: Annotated[str, Form(min_length=1, max_length=150)],
    display_name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=1000)],
) -> HTMLResponse:
    error = None
    try:
        auth.create_user(
            ctx.engine, username, display_name, role, password, user.user_id, ctx.now()
        )
    except (UserExistsError, ValueError) as exc:
        error = str(exc)
    return _account(ctx, request, user, 400 if error else 200, user_error=error)


# ------------------------------------------------------------------ reports


@router.get("/reports")
def reports_page(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    if user.role not in auth.CAN_READ_AUDIT:
        raise HTTPException(403, "only admins and auditors download reports")
    today = ctx.now().date()
    sites = sorted({room.site for room, _ in stored_rooms.rooms(ctx.engine)})
    return render(
        ctx,
        request,
        "reports.html",
        user,
        kinds=[k.value for k in ReportKind],
        formats=[f.value for f in ReportFormat],
        sites=sites,
        start=today.replace(month=1, day=1) if today.month < 8 else today.replace(month=8, day=1),
        end=today,
    )


@router.get("/reports/download")
def download_report(
    ctx: Ctx,
    user: PageUser,
    kind: ReportKind,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    site: Annotated[str, Query(max_length=64)] = "",
    format: ReportFormat = ReportFormat.PDF,
) -> Response:
    if user.role not in auth.CAN_READ_AUDIT:
        raise HTTPException(403, "only admins and auditors download reports")
    return report_file(ctx, kind, site or None, start, end, format)
