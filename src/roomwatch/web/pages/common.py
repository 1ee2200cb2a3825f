"""What every page module needs: rendering a template for a user."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from roomwatch.collector.read import people
from roomwatch.web import auth
from roomwatch.web.context import WebContext


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


def names(ctx: WebContext) -> dict[str, str]:
    """Display names by user id, for the pages that show who did what."""
    return people.display_names(ctx.engine)
