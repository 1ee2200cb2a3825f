"""The server-rendered pages, by group. Changes are plain form posts (htmx swaps the answer
in place where that helps), each carrying the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter

from roomwatch.web.pages import admin, alerts, episodes, reports, signin

router = APIRouter(include_in_schema=False)
for _group in (signin, alerts, episodes, admin, reports):
    router.include_router(_group.router)
