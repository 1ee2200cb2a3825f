"""Scheduled delivery of the quarterly and annual reports, ahead of their due dates.

Due dates come from the profile (``reporting.quarterly_due``, ``annual_due``; Minnesota:
Jan 15, Apr 15, Jul 15, Oct 15 and the annual summary by Jul 15, seed 003) or from the
config (``reports.quarterly_due`` / ``annual_due``). A quarterly report covers the three
months before the due month (Jan 15: October to December); the annual one the school year
that ended before it (Jul 15: July 1 to June 30). A profile's ``log_review_every_months``
(004 I.B: logs reviewed "at least quarterly"; the default profile: 3) adds a log review: the
episode logs of each run of that many months from the school year's start, due the day after
the run ends (one already sent as a quarterly report of the same months is not sent twice).
Each is sent ``lead_days`` before its due date, through Apprise with the rendered files
attached, once: ``report_delivery`` keeps what was sent (with the audit chain head), and a
failed delivery is tried again each day until 30 days after the due date.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import apprise
from sqlalchemy import Engine

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.delivery import redact_url
from roomwatch.collector.read.records import StoredReportDelivery
from roomwatch.collector.report_book import record_delivery, was_sent
from roomwatch.compliance.render import filename, render
from roomwatch.compliance.reports import ReportKind, build_report
from roomwatch.core.policy import load_profile

log = logging.getLogger(__name__)

#: A delivery that failed is retried daily until this many days after its due date.
RETRY_DAYS = 30


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # "quarterly" | "annual"
    start: date
    end: date
    due: date


def _month_day(value: str, year: int) -> date:
    month, day = (int(p) for p in value.split("-"))
    return date(year, month, day)


def _months_later(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def periods(
    quarterly: list[str],
    annual: str | None,
    year_starts: str,
    around: date,
    review_every_months: int | None = None,
) -> list[Period]:
    """The report periods whose due dates fall in the year before or after ``around``."""
    found = []
    if review_every_months is not None:
        # Runs of months from the start of the school year before last, so the year around
        # ``around`` is covered whatever the month.
        begins = _month_day(year_starts, around.year - 2).replace(day=1)
        while begins <= around + timedelta(days=400):
            ends = _months_later(begins, review_every_months)
            found.append(Period("log review", begins, ends - timedelta(days=1), ends))
            begins = ends
    for year in (around.year - 1, around.year, around.year + 1):
        for md in quarterly:
            due = _month_day(md, year)
            end = due.replace(day=1) - timedelta(days=1)
            months = end.year * 12 + end.month - 1 - 2  # two months before the last one
            start = date(months // 12, months % 12 + 1, 1)
            found.append(Period("quarterly", start, end, due))
        if annual:
            due = _month_day(annual, year)
            # The last school year that ended before the due date.
            begins = _month_day(year_starts, due.year)
            if begins > due:
                begins = _month_day(year_starts, due.year - 1)
            start = _month_day(year_starts, begins.year - 1)
            found.append(Period("annual", start, begins - timedelta(days=1), due))
    return sorted(found, key=lambda p: (p.due, p.label))


def due_now(config: CollectorConfig, today: date) -> list[Period]:
    """The periods to send today: past their send date, not more than RETRY_DAYS overdue."""
    settings = config.reports
    profile = load_profile(settings.profile or config.default_profile)
    quarterly = (
        settings.quarterly_due
        if settings.quarterly_due is not None
        else profile.reporting.quarterly_due
    )
    annual = settings.annual_due or profile.reporting.annual_due
    calendar = config.calendar_for(settings.site) if settings.site else config.school_calendar
    lead = timedelta(days=settings.lead_days)
    found = periods(
        list(quarterly),
        annual,
        calendar.school_year_starts,
        today,
        profile.reporting.log_review_every_months,
    )
    return [
        p
        for p in _one_per_span(found)
        if p.due - lead <= today <= p.due + timedelta(days=RETRY_DAYS)
    ]


def _one_per_span(found: list[Period]) -> list[Period]:
    """A log review of the same months as a quarterly report is that report."""
    spans = {(p.start, p.end) for p in found if p.label != "log review"}
    return [p for p in found if p.label != "log review" or (p.start, p.end) not in spans]


class ReportDeliveries:
    def __init__(
        self,
        engine: Engine,
        config: CollectorConfig,
        now: Callable[[], datetime],
        send: Callable[[list[str], str, str, list[Path]], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.now = now
        self.send = send or send_with_apprise

    def run(self) -> list[StoredReportDelivery]:
        """Send every report due today that was not sent yet; returns what was tried."""
        settings = self.config.reports
        if not settings.recipients:
            return []
        at = self.now()
        calendar = (
            self.config.calendar_for(settings.site)
            if settings.site
            else self.config.school_calendar
        )
        today = calendar.local_date(at)
        scope = settings.site or "*"
        tried = []
        for period in due_now(self.config, today):
            for kind in settings.kinds:
                if self._sent(kind, scope, period):
                    continue
                tried.append(self._deliver(ReportKind(kind), scope, period, at))
        return tried

    def _sent(self, kind: str, scope: str, period: Period) -> bool:
        return was_sent(self.engine, kind, scope, period.start, period.end)

    def _deliver(
        self, kind: ReportKind, scope: str, period: Period, at: datetime
    ) -> StoredReportDelivery:
        settings = self.config.reports
        report = build_report(
            self.engine, kind, settings.site, period.start, period.end, self.config, at
        )
        title = (
            f"Roomwatch {period.label} {kind.value} report {period.start} to {period.end} "
            f"(due {period.due})"
        )
        body = (
            f"{report.title}\nDue {period.due}. Audit chain head at export: "
            f"{report.audit_chain_head}\n"
            + "\n".join(f"{k}: {v}" for k, v in report.summary.items() if not isinstance(v, dict))
        )
        error = None
        with tempfile.TemporaryDirectory(prefix="roomwatch-report-") as folder:
            files = []
            for fmt in settings.formats:
                path = Path(folder) / filename(report, fmt)
                path.write_bytes(render(report, fmt))
                files.append(path)
            try:
                ok = self.send(settings.recipients, title, body, files)
                if not ok:
                    error = "a recipient did not accept the report"
            except Exception as exc:  # noqa: BLE001 - any channel failure: record it, retry tomorrow
                ok, error = False, f"{type(exc).__name__}: {exc}"
        row = record_delivery(
            self.engine,
            StoredReportDelivery(
                kind=kind.value,
                scope=scope,
                period_start=period.start,
                period_end=period.end,
                due=period.due,
                sent_at=at,
                recipients=len(settings.recipients),
                chain_head=report.audit_chain_head,
                ok=ok,
                error=(error or "")[:1000] or None,
            ),
        )
        (log.info if ok else log.warning)(
            "%s %s report %s..%s to %d recipient(s): %s",
            period.label,
            kind.value,
            period.start,
            period.end,
            len(settings.recipients),
            "sent" if ok else error,
        )
        return row


def send_with_apprise(urls: list[str], title: str, body: str, files: list[Path]) -> bool:
    """Every recipient gets the files attached (mailto://, json://, ...); True if all took it."""
    ok = True
    for url in urls:
        client = apprise.Apprise()
        if not client.add(url):
            log.warning("report recipient %s is not a usable Apprise URL", redact_url(url))
            ok = False
            continue
        attachments = apprise.AppriseAttachment()
        for path in files:
            attachments.add(str(path))
        ok = bool(client.notify(title=title, body=body, attach=attachments)) and ok
    return ok
