"""The staff web app: FastAPI, server-rendered pages, live updates over server-sent events,
and a JSON API. :func:`create_app` assembles it; :class:`WebServer` runs it beside a running
:class:`Collector`."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from roomwatch import __version__
from roomwatch.collector.config import WebSettings
from roomwatch.collector.service import Collector
from roomwatch.web import api, assets, errors, feed, pages, push
from roomwatch.web.context import WebContext
from roomwatch.web.limits import BodyLimit

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


def create_app(
    collector: Collector,
    settings: WebSettings,
    push_sender: push.PushSender | None = None,
    vapid_key: str | None = None,
) -> FastAPI:
    templates = assets.templates()
    hub = feed.hub(collector, templates)
    app = FastAPI(
        title="Roomwatch",
        version=__version__,
        description="Live rooms, alerts and incident records. Authenticate with a bearer API "
        "token (rw_..., issued by an admin on the account page) or a session cookie with the "
        "X-CSRF-Token header for changes.",
        lifespan=feed.lifespan(collector, hub, push_sender),
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads its script from a CDN, which the CSP (rightly) blocks
        redoc_url=None,
    )
    app.state.web = WebContext(collector, settings, templates, hub, push_sender, vapid_key)
    app.include_router(api.router)
    app.include_router(pages.router)
    assets.mount(app)
    app.include_router(feed.router)
    errors.install(app)
    app.middleware("http")(security_headers)
    app.add_middleware(BodyLimit)  # outermost: an oversized body is refused before all else
    return app


async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


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
