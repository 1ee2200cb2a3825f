"""What the pages and the JSON API both do: each route is a thin adapter (form or JSON in,
HTML or JSON out) over one of these, so neither calls the other's route functions."""

from __future__ import annotations

import logging
from datetime import date

from fastapi import HTTPException, Response
from pydantic import ValidationError

from roomwatch.collector import incidents
from roomwatch.collector.config import RoomRegistration
from roomwatch.collector.read import alerts as stored_alerts
from roomwatch.collector.read import episodes as stored_episodes
from roomwatch.compliance import verdicts
from roomwatch.compliance.render import MEDIA_TYPES, ReportFormat, filename, render
from roomwatch.compliance.reports import ReportKind, build_report
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.policy import StudentBand, available_profiles
from roomwatch.core.verdict import Verdict
from roomwatch.web.context import WebContext
from roomwatch.web.schemas import AlertOut, EpisodeDetail, EpisodeOut, SampleOut, TimelineOut

log = logging.getLogger(__name__)


class UnknownProfileError(ValueError):
    """A room registration names a policy profile that does not exist."""


def acknowledge_alert(ctx: WebContext, alert_id: str, by: str) -> AlertOut:
    """Take an open alert (recorded with who and when; escalation stops). Raises
    AcknowledgeError when no open alert has that id."""
    transition = ctx.collector.acknowledge(alert_id, by)
    return AlertOut.of_open(transition.alert, transition.state.value)


def register_room(
    ctx: WebContext,
    site: str,
    room: str,
    profile: str | None,
    student_band: StudentBand | None,
    by: str,
) -> None:
    """Register a room, or change its policy profile and student band."""
    try:
        settings = RoomRegistration(profile=profile, student_band=student_band)
    except ValidationError:
        known = ", ".join(available_profiles())
        raise UnknownProfileError(f"unknown profile {profile!r}; known: {known}") from None
    ctx.collector.register_room(site, room, settings, by)


def load_incident(ctx: WebContext, episode_id: str) -> incidents.StoredIncident:
    """An episode's incident record (404 when there is no such episode)."""
    try:
        return incidents.load(ctx.engine, episode_id)
    except incidents.UnknownEpisodeError as exc:
        raise HTTPException(404, str(exc)) from None


def save_incident(
    ctx: WebContext, episode_id: str, record: IncidentRecord, by: str, version: int
) -> incidents.StoredIncident:
    """Save an incident record over ``version`` (404 when there is no such episode).
    Raises StaleRecordError when someone saved since."""
    try:
        return incidents.save(ctx.engine, episode_id, record, by, version, ctx.now)
    except incidents.UnknownEpisodeError as exc:
        raise HTTPException(404, str(exc)) from None


def episode_detail(ctx: WebContext, episode_id: str) -> EpisodeDetail:
    """The episode with its timeline (every event and alert step) and its readings."""
    ep = stored_episodes.episode(ctx.engine, episode_id)
    if ep is None:
        raise HTTPException(404, f"no episode {episode_id!r}")
    record = incidents.load(ctx.engine, episode_id)
    return EpisodeDetail(
        episode=EpisodeOut.of(ep),
        timeline=[
            TimelineOut(at=i.at, kind=i.kind, text=i.text, severity=i.severity)
            for i in stored_episodes.timeline(ctx.engine, ep)
        ],
        samples=[
            SampleOut(at=s.at, temperature_c=s.temperature_c, lux=s.lux)
            for s in stored_episodes.series(ctx.engine, episode_id)
        ],
        alerts=[
            AlertOut.of_record(a) for a in stored_alerts.alerts(ctx.engine, episode_id=episode_id)
        ],
        record_missing=record.record.missing(),
        verdict=_verdict(ctx, episode_id),
    )


def _verdict(ctx: WebContext, episode_id: str) -> Verdict | None:
    try:
        return verdicts.verdict(ctx.engine, episode_id, ctx.collector.config, ctx.now())
    except Exception:  # the page still shows the facts; the failure is loud in the log
        log.exception("cannot compute the verdict on episode %s", episode_id)
        return None


#: The longest period one report covers (a school year and then some).
MAX_REPORT_DAYS = 400
MIN_YEAR, MAX_YEAR = 2000, 2100


def report_file(
    ctx: WebContext,
    kind: ReportKind,
    site: str | None,
    start: date,
    end: date,
    fmt: ReportFormat,
) -> Response:
    """Build and render a compliance report, as a download."""
    if end < start:
        raise HTTPException(422, "the period ends before it starts")
    if (end - start).days > MAX_REPORT_DAYS:
        raise HTTPException(422, f"a report covers at most {MAX_REPORT_DAYS} days")
    if not (start.year >= MIN_YEAR and end.year <= MAX_YEAR):
        raise HTTPException(422, f"dates must fall in {MIN_YEAR}-{MAX_YEAR}")
    report = build_report(ctx.engine, kind, site, start, end, ctx.collector.config, ctx.now())
    return Response(
        render(report, fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename(report, fmt)}"',
            "X-Audit-Chain-Head": report.audit_chain_head,
        },
    )
