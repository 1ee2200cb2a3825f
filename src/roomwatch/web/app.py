"""The staff web app: FastAPI, server-rendered pages, live updates over server-sent events,
and a JSON API. :class:`WebServer` runs it beside a running :class:`Collector`."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DataError, DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from roomwatch import __version__
from roomwatch.collector.config import WebSettings
from roomwatch.collector.read import people
from roomwatch.collector.service import Change, Collector
from roomwatch.core import rules
from roomwatch.web import api, auth, pages, push
from roomwatch.web.context import COOKIE, MaybeUser, SignInRequiredError, WebContext, page_user
from roomwatch.web.limits import BodyLimit
from roomwatch.web.live import Event, Hub
from roomwatch.web.schemas import AlertOut, RoomOut

log = logging.getLogger(__name__)

_HERE = Path(str(resources.files("roomwatch.web")))
STATIC = _HERE / "static"
TEMPLATES = _HERE / "templates"


def _local_time(value: datetime | None) -> str:
    """Times go out as UTC ISO; the page's script shows them in the reader's own zone."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["iso"] = _local_time
    templates.env.globals["version"] = __version__
    return templates


def create_app(
    collector: Collector,
    settings: WebSettings,
    push_sender: push.PushSender | None = None,
    vapid_key: str | None = None,
) -> FastAPI:
    templates = _templates()

    def render_room(key: tuple[str, str]) -> Event | None:
        state = collector.room_snapshot(key)
        if state is None:
            return None
        room = RoomOut.of(state, collector.clock.now())
        html = templates.get_template("_room_card.html").render(room=room)
        return Event("room", {"id": room.dom_id, "html": html})

    def render_alert(t: rules.Transition) -> Event:
        alert = AlertOut.of_open(t.alert, t.state.value)
        names = people.display_names(collector.store.engine)
        row = templates.get_template("_alert_row.html")
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

    hub = Hub(render_room, render_alert)
    ctx = WebContext(collector, settings, templates, hub, push_sender, vapid_key)

    def listen(change: Change) -> None:
        hub.on_change(change)
        if push_sender is not None and change.transitions:
            push_sender.on_transitions(change.transitions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        collector.listeners.append(listen)
        try:
            yield
        finally:
            if listen in collector.listeners:
                collector.listeners.remove(listen)
            await hub.stop()

    app = FastAPI(
        title="Roomwatch",
        version=__version__,
        description="Live rooms, alerts and incident records. Authenticate with a bearer API "
        "token (rw_..., issued by an admin on the account page) or a session cookie with the "
        "X-CSRF-Token header for changes.",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads its script from a CDN, which the CSP (rightly) blocks
        redoc_url=None,
    )
    app.state.web = ctx
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/events", include_in_schema=False)
    async def events(request: Request, user: MaybeUser) -> Response:
        reader = page_user(user)
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
            return await run_in_threadpool(signed_in)

        return StreamingResponse(
            hub.stream(still_signed_in, readonly=not reader.may("acknowledge")),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # The worker must sit at the root to control every page; the manifest makes it a PWA.
    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        return FileResponse(
            STATIC / "sw.js",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
        )

    @app.get("/manifest.webmanifest", include_in_schema=False)
    def manifest() -> FileResponse:
        return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")

    @app.exception_handler(SignInRequiredError)
    async def to_login(request: Request, exc: SignInRequiredError) -> Response:
        return RedirectResponse("/login", status_code=303)

    def error_page(
        request: Request, status: int, detail: object, headers: dict[str, str] | None = None
    ) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"user": None, "status": status, "detail": detail},
            status_code=status,
            headers=headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        return error_page(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input back and fails (500) on a lone surrogate
        # ("\ud800" is valid JSON but not UTF-8): escape everything to ASCII instead.
        errors = jsonable_encoder(exc.errors())
        if request.url.path.startswith("/api/"):
            return AsciiJSONResponse({"detail": errors}, status_code=422)
        wrong = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in errors
        )
        return error_page(request, 422, wrong.encode("ascii", "backslashreplace").decode())

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> Response:
        log.warning("the database refused a value from %s: %s", request.url.path, exc.orig)
        detail = "a value in the request cannot be stored (e.g. a NUL character)"
        if request.url.path.startswith("/api/"):
            return AsciiJSONResponse({"detail": detail}, status_code=422)
        return error_page(request, 422, detail)

    @app.exception_handler(DBAPIError)
    async def database_down(request: Request, exc: DBAPIError) -> Response:
        # The collector goes on (alerts do not wait for the database); say so plainly.
        log.error("database error answering %s: %s", request.url.path, exc)
        detail = "the database is not answering; the live board and alerts go on. Try again."
        headers = {"Retry-After": "5"}
        if request.url.path.startswith("/api/"):
            return AsciiJSONResponse({"detail": detail}, status_code=503, headers=headers)
        return error_page(request, 503, detail, headers)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        )
        return response

    app.add_middleware(BodyLimit)
    return app


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: safe for any string Python holds."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode()


class WebServer:
    """Uvicorn on its own thread. The socket is bound before the thread starts, so the port
    is known (and a clash reported) at once."""

    def __init__(self, collector: Collector, settings: WebSettings) -> None:
        self.settings = settings
        self.push: push.PushSender | None = None
        vapid_public: str | None = None
        try:
            key = push.load_or_create_key(settings.vapid_path())
            self.push = push.PushSender(collector.store.engine, key, settings.vapid_subject)
            vapid_public = push.application_server_key(key)
        except Exception as exc:  # noqa: BLE001 - no push is worse than no app: go on, loudly
            log.error(
                "Web Push is off: cannot use the VAPID key %s: %s", settings.vapid_path(), exc
            )
        self.app = create_app(collector, settings, self.push, vapid_public)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a display name
        return f"http://{shown}:{self.port}"

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.host, self.settings.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self._thread.start()
        log.info("web app on %s", self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        if self.push is not None:
            self.push.close()
