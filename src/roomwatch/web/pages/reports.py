"""The reports page and its downloads (admins and auditors)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from roomwatch.collector.read import rooms as stored_rooms
from roomwatch.compliance.render import ReportFormat
from roomwatch.compliance.reports import ReportKind
from roomwatch.web import auth, services
from roomwatch.web.context import Ctx, page_may
from roomwatch.web.pages.common import render

router = APIRouter(include_in_schema=False)

ReportReader = Annotated[auth.Principal, page_may("download_reports")]


@router.get("/reports")
def reports_page(request: Request, ctx: Ctx, user: ReportReader) -> HTMLResponse:
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
    user: ReportReader,
    kind: ReportKind,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    site: Annotated[str, Query(max_length=64)] = "",
    format: ReportFormat = ReportFormat.PDF,
) -> Response:
    return services.report_file(ctx, kind, site or None, start, end, format)
