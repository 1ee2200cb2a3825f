"""Rooms, the audit trail and accounts (users, API tokens, sign-in locks)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from roomwatch.collector.accounts import UserExistsError
from roomwatch.collector.read import audit_log, people
from roomwatch.collector.read import rooms as stored_rooms
from roomwatch.core.policy import StudentBand, available_profiles, load_profile
from roomwatch.web import auth, services, throttle
from roomwatch.web.context import Ctx, PageUser, WebContext, may, page_may
from roomwatch.web.pages.common import names, render
from roomwatch.web.schemas import ID_PATTERN, AuditOut, RoomOut

router = APIRouter(include_in_schema=False)

UserAdmin = Annotated[auth.Principal, may("manage_users")]
TokenAdmin = Annotated[auth.Principal, may("manage_tokens")]


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
    refused = f"cannot register {site}/{room}"
    try:
        band = StudentBand(student_band) if student_band else None
    except ValueError as exc:
        raise HTTPException(400, f"{refused}: {exc}") from None
    try:
        services.register_room(ctx, site, room, profile or None, band, user.user_id)
    except services.UnknownProfileError as exc:
        raise HTTPException(400, f"{refused}: {exc}") from None
    return RedirectResponse("/rooms", status_code=303)


@router.get("/audit")
def audit_page(
    request: Request, ctx: Ctx, user: Annotated[auth.Principal, page_may("read_audit")]
) -> HTMLResponse:
    entries = [AuditOut.of(e) for e in audit_log.audit_entries(ctx.engine, 500)]
    return render(ctx, request, "audit.html", user, entries=entries, names=names(ctx))


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
    # What the page shows each role (the changes it offers are checked by may()).
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
    user: UserAdmin,
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
    user: TokenAdmin,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> HTMLResponse:
    secret, _ = auth.issue_token(ctx.engine, user.user_id, name, user.user_id, ctx.now())
    return _account(ctx, request, user, new_token=secret)


@router.post("/account/users")
def add_user(
    request: Request,
    ctx: Ctx,
    user: UserAdmin,
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
