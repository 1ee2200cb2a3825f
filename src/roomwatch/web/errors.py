"""How the app answers when a request fails: JSON under /api/, an error page elsewhere,
and a sign-in redirect for a page asked for without a session."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from roomwatch.web.context import SignInRequiredError, context

log = logging.getLogger(__name__)


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: safe for any string Python holds."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode()


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequiredError, _to_login)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(DBAPIError, _database_down)


def _for_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(
    request: Request, status: int, detail: object, headers: dict[str, str] | None = None
) -> Response:
    return context(request).templates.TemplateResponse(
        request,
        "error.html",
        {"user": None, "status": status, "detail": detail},
        status_code=status,
        headers=headers,
    )


def _refusal(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    if _for_api(request):
        return AsciiJSONResponse({"detail": detail}, status_code=status, headers=headers)
    return _error_page(request, status, detail, headers)


async def _to_login(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if _for_api(request):
        return await http_exception_handler(request, exc)
    return _error_page(request, exc.status_code, exc.detail, getattr(exc, "headers", None))


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's own handler echoes the input back and fails (500) on a lone surrogate
    # ("\ud800" is valid JSON but not UTF-8): escape everything to ASCII instead.
    errors = jsonable_encoder(exc.errors())
    if _for_api(request):
        return AsciiJSONResponse({"detail": errors}, status_code=422)
    wrong = "; ".join(
        f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
        for e in errors
    )
    return _error_page(request, 422, wrong.encode("ascii", "backslashreplace").decode())


async def _unstorable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DataError)
    log.warning("the database refused a value from %s: %s", request.url.path, exc.orig)
    return _refusal(request, 422, "a value in the request cannot be stored (e.g. a NUL character)")


async def _database_down(request: Request, exc: Exception) -> Response:
    # The collector goes on (alerts do not wait for the database); say so plainly.
    log.error("database error answering %s: %s", request.url.path, exc)
    detail = "the database is not answering; the live board and alerts go on. Try again."
    return _refusal(request, 503, detail, {"Retry-After": "5"})
