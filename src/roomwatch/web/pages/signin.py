"""Signing in (throttled) and out."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from roomwatch.web import auth, throttle
from roomwatch.web.context import COOKIE, Ctx, MaybeUser, WebContext, offered_csrf, same_origin
from roomwatch.web.pages.common import render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

WRONG = (401, "Wrong username or password.")


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
    # The peer, or the client a trusted local proxy names (uvicorn's proxy headers).
    address = (request.client.host if request.client else "unknown")[:100]
    answer = _check_password(ctx, username, password, address)
    if isinstance(answer, tuple):
        status, error = answer
        return render(ctx, request, "login.html", None, status, error=error, username=username)
    # A new session each time; the one this browser had before (if any) ends now.
    previous = request.cookies.get(COOKIE)
    if previous:
        auth.sign_out(ctx.engine, previous)
    return _with_session(ctx, request, answer)


def _check_password(
    ctx: WebContext, username: str, password: str, address: str
) -> str | tuple[int, str]:
    """The new session's token, or the status and message that refuse it."""
    if not username.isprintable():  # a NUL byte would be a database error on PostgreSQL
        return WRONG
    now = ctx.now()
    lock = throttle.locked(ctx.engine, username, address, now)
    if lock is not None:  # no password is checked while locked
        return 429, lock.describe(now)
    signed = auth.sign_in(ctx.engine, username, password, ctx.settings.session_hours, now)
    if signed is not None:
        throttle.succeeded(ctx.engine, username, address)
        return signed[0]
    lock = throttle.failed(ctx.engine, username, address, now)
    if lock is None:
        return WRONG
    log.warning(
        "sign-in locked (%s) for %r from %s until %s after repeated failures",
        lock.scope,
        username,
        address,
        lock.until.isoformat(),
    )
    return 429, lock.describe(now)


def _with_session(ctx: WebContext, request: Request, token: str) -> Response:
    """To the board, with the session cookie (Secure when the browser came over HTTPS)."""
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
