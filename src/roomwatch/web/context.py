"""What every request handler needs, and who is asking (authentication and permissions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from roomwatch.collector.config import WebSettings
from roomwatch.collector.service import Collector
from roomwatch.web import auth
from roomwatch.web.live import Hub
from roomwatch.web.push import PushSender

COOKIE = "roomwatch_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass
class WebContext:
    collector: Collector
    settings: WebSettings
    templates: Jinja2Templates
    hub: Hub
    push: PushSender | None
    vapid_public_key: str | None

    @property
    def engine(self) -> Engine:
        return self.collector.store.engine

    def now(self) -> datetime:
        return self.collector.clock.now()


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.web
    return ctx


Ctx = Annotated[WebContext, Depends(context)]

_bearer = HTTPBearer(auto_error=False, description="An API token (rw_...) from the account page")


def who(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal | None:
    """The signed-in user (bearer token first, then the session cookie), or None."""
    if credentials is not None:
        return auth.from_token(ctx.engine, credentials.credentials, ctx.now)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return auth.from_session(ctx.engine, cookie, ctx.now())
    return None


MaybeUser = Annotated[auth.Principal | None, Depends(who)]


class SignInRequiredError(Exception):
    """A page asked for without a session: pages redirect to /login."""


def page_user(user: MaybeUser) -> auth.Principal:
    if user is None:
        raise SignInRequiredError
    return user


def api_user(user: MaybeUser) -> auth.Principal:
    if user is None:
        raise HTTPException(
            401, "sign in or send an API token", headers={"WWW-Authenticate": "Bearer"}
        )
    return user


PageUser = Annotated[auth.Principal, Depends(page_user)]
ApiUser = Annotated[auth.Principal, Depends(api_user)]


async def offered_csrf(request: Request) -> str | None:
    offered = request.headers.get(CSRF_HEADER)
    if offered is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        offered = value if isinstance(value, str) else None
    return offered


#: Reading rights (auth.CAN_CHANGE holds the changes): who may, and the refusal otherwise.
READS = {
    "read_audit": (auth.CAN_READ_AUDIT, "only admins and auditors read the audit trail"),
    "download_reports": (auth.CAN_READ_AUDIT, "only admins and auditors download reports"),
}


def permit(user: auth.Principal, action: str) -> auth.Principal:
    """The one role check every route makes: 403 unless the user's role may do ``action``."""
    if action in READS:
        roles, refusal = READS[action]
        allowed = user.role in roles
    else:
        allowed = user.may(action)
        refusal = f"a {user.role} may not {action.replace('_', ' ')}"
    if not allowed:
        raise HTTPException(403, refusal)
    return user


def may(action: str) -> object:
    """A dependency: the user may do ``action``, and (for a cookie session) the request
    carries the session's CSRF token."""

    async def check(request: Request, user: MaybeUser) -> auth.Principal:
        if user is None:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
        permit(user, action)
        if not auth.csrf_ok(user, await offered_csrf(request)):
            raise HTTPException(403, "the form is stale or forged (CSRF token); reload the page")
        return user

    return Depends(check)


def may_read(action: str) -> object:
    """A dependency for an API read: signed in (401 if not) and allowed ``action``. No
    CSRF token: a read changes nothing."""

    def check(user: ApiUser) -> auth.Principal:
        return permit(user, action)

    return Depends(check)


def page_may(action: str) -> object:
    """A dependency for a page: signed in (else to the sign-in page) and allowed ``action``."""

    def check(user: PageUser) -> auth.Principal:
        return permit(user, action)

    return Depends(check)


def same_origin(request: Request) -> bool:
    """Whether a browser sent this request from one of our own pages (login CSRF: a form on
    another site must not sign a victim in to the attacker's account). Browsers send
    Sec-Fetch-Site, or at least Origin, with every POST; other clients send neither."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return origin != "null" and origin.split("://", 1)[-1] == host
