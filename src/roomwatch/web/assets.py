"""The files the app serves as they are (static assets, the service worker, the PWA
manifest) and the Jinja templates the pages render."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from roomwatch import __version__

_HERE = Path(str(resources.files("roomwatch.web")))
STATIC = _HERE / "static"
TEMPLATES = _HERE / "templates"

router = APIRouter(include_in_schema=False)


def _local_time(value: datetime | None) -> str:
    """Times go out as UTC ISO; the page's script shows them in the reader's own zone."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(TEMPLATES))
    found.env.filters["iso"] = _local_time
    found.env.globals["version"] = __version__
    return found


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(router)


# The worker must sit at the root to control every page; the manifest makes it a PWA.
@router.get("/sw.js")
def service_worker() -> FileResponse:
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/manifest.webmanifest")
def manifest() -> FileResponse:
    return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")
