"""Reports for the audit questions of POLICIES.md, built from the database.

``build_report(engine, kind, site, start, end)`` gives a :class:`Report` (tables, charts,
summary figures and the audit chain head it was made from); ``render.render(report,
format)`` turns it into CSV, JSON or PDF bytes. Kinds:

* ``environment``: per room, the share of occupied time within the temperature and light
  limits, and every excursion (ROOM; 002 §1, 004 I.A);
* ``episodes``: the episode log with the fields of the NY regulation (002 §8) and North
  Colonie policy (004 I.B, II), the parent notification (002 §9, 004 I.C) and the verdict;
* ``students``: per student reference, episodes, school days, minutes and verdicts;
* ``district``: the Minnesota figures (003): incidents, students, students with 10 or more
  days, duration mode / median / mean and 5-minute buckets, injuries to students and staff,
  counts by school and room, and by quarter of the school year.

The period is ``start`` to ``end`` inclusive, in the site's calendar (the default calendar
for the whole district); an episode belongs to the period it started in.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.database import as_utc
from roomwatch.collector.incidents import _to_record
from roomwatch.collector.models import EpisodeRecord, IncidentRow, TelemetryRecord
from roomwatch.compliance.context import Rulebook, table
from roomwatch.compliance.verdicts import verdicts
from roomwatch.core import durations
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.incident import IncidentRecord
from roomwatch.core.rules import EnvironmentLimits
from roomwatch.core.verdict import Outcome


class ReportKind(StrEnum):
    ENVIRONMENT = "environment"
    EPISODES = "episodes"
    STUDENTS = "students"
    DISTRICT = "district"


class ReportTable(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    #: The columns a PDF page has room for (None: all); CSV and JSON always have all.
    pdf_columns: list[str] | None = None


class Chart(BaseModel):
    """A bar chart: one bar per label for each series (grouped when several)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    x_label: str
    y_label: str
    labels: list[str]
    series: dict[str, list[float]]
    threshold: float | None = None  # a horizontal line (e.g. the 10-day rule)


class Report(BaseModel):
    """What every export carries: the chain head of the audit trail it was made from
    (``audit_chain_head``), so a later edit of the trail is detectable against it."""

    model_config = ConfigDict(frozen=True)

    kind: ReportKind
    title: str
    site: str | None
    start: date
    end: date
    timezone: str
    generated_at: datetime
    audit_chain_head: str
    summary: dict[str, Any]
    tables: list[ReportTable]
    charts: list[Chart]
    notes: list[str] = []


# --------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _Episode:
    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    record: IncidentRecord

    @property
    def duration_s(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None


def _bounds(calendar: SchoolCalendar, start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    zone = calendar.zone
    return (
        datetime.combine(start, time(0), zone).astimezone(UTC),
        datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC),
    )


def _episodes(engine: Engine, site: str | None, since: datetime, until: datetime) -> list[_Episode]:
    ep = table(EpisodeRecord)
    query = (
        select(EpisodeRecord, IncidentRow)
        .join(IncidentRow, IncidentRow.episode_id == EpisodeRecord.episode_id, isouter=True)  # type: ignore[arg-type]
        .where(ep.c.started_at >= since, ep.c.started_at < until)
        .order_by(ep.c.started_at, ep.c.episode_id)
    )
    if site is not None:
        query = query.where(ep.c.site == site)
    with Session(engine) as session:
        return [
            _Episode(
                e.episode_id,
                e.site,
                e.room,
                as_utc(e.started_at),
                as_utc(e.ended_at) if e.ended_at else None,
                _to_record(row) if row is not None else IncidentRecord(),
            )
            for e, row in session.execute(query).all()
        ]


def build_report(
    engine: Engine,
    kind: ReportKind | str,
    site: str | None,
    start: date,
    end: date,
    config: CollectorConfig | None = None,
    now: datetime | None = None,
) -> Report:
    """Build report ``kind`` for ``site`` (None: every site) from ``start`` to ``end``
    (inclusive dates in the site's time zone). The audit chain head is read first, so every
    row the report shows was already covered by it."""
    kind = ReportKind(kind)
    config = config or CollectorConfig()
    now = now or datetime.now(UTC)
    head = audit.head_of(engine)
    calendar = config.calendar_for(site) if site else config.school_calendar
    since, until = _bounds(calendar, start, end)
    builder = _BUILDERS[kind]
    title, summary, tables, charts, notes = builder(
        _Context(engine, config, Rulebook(engine, config), calendar, site, since, until, now)
    )
    where = f"site {site}" if site else "all sites"
    return Report(
        kind=kind,
        title=f"{title}: {where}, {start} to {end}",
        site=site,
        start=start,
        end=end,
        timezone=calendar.timezone,
        generated_at=now,
        audit_chain_head=head,
        summary=summary,
        tables=tables,
        charts=charts,
        notes=notes,
    )


@dataclass(frozen=True, slots=True)
class _Context:
    engine: Engine
    config: CollectorConfig
    book: Rulebook
    calendar: SchoolCalendar
    site: str | None
    since: datetime
    until: datetime
    now: datetime

    def local(self, e: _Episode) -> SchoolCalendar:
        return self.config.calendar_for(e.site)


_Built = tuple[str, dict[str, Any], list[ReportTable], list[Chart], list[str]]


def _minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 2) if seconds is not None else None


def _local_time(calendar: SchoolCalendar, at: datetime | None) -> str:
    return at.astimezone(calendar.zone).strftime("%H:%M:%S") if at else ""


# ------------------------------------------------------------------ environment


def _environment(c: _Context) -> _Built:
    t = table(TelemetryRecord)
    query = (
        select(t.c.site, t.c.room, t.c.ts, t.c.temperature_c, t.c.lux, t.c.occupied, t.c.episode_id)
        .where(t.c.ts >= c.since, t.c.ts < c.until)
        .where((t.c.occupied.is_(True)) | (t.c.episode_id.is_not(None)))
        .order_by(t.c.site, t.c.room, t.c.ts)
    )
    if c.site is not None:
        query = query.where(t.c.site == c.site)
    # A reading stands for the time to the next occupied reading, at most this long.
    cap = max(60.0, 3 * c.config.telemetry_interval_s)
    rooms: dict[tuple[str, str], list[tuple[datetime, float | None, float | None]]] = defaultdict(
        list
    )
    with Session(c.engine) as session:
        for site, room, ts, temp, lux, _occupied, _ep in session.execute(query):
            rooms[(site, room)].append((as_utc(ts), temp, lux))
    summary_rows, excursions = [], []
    labels, temp_share, lux_share = [], [], []
    totals = Counter[str]()
    for (site, room), readings in sorted(rooms.items()):
        limits = EnvironmentLimits.from_profile(c.book.for_room(site, room).profile)
        times = [r[0] for r in readings]
        weights = [min(cap, (b - a).total_seconds()) for a, b in itertools.pairwise(times)]
        weights.append(min(cap, c.config.telemetry_interval_s))
        lux_min = limits.lux_min
        checks: dict[str, tuple[list[float | None], Callable[[float], bool] | None]] = {
            "temperature": ([r[1] for r in readings], limits.temperature_c.contains),
            "light": (
                [r[2] for r in readings],
                (lambda v: v >= lux_min) if lux_min is not None else None,  # noqa: B023
            ),
        }
        figures: dict[str, float] = {"occupied_s": sum(weights)}
        for name, (values, ok) in checks.items():
            known, within, runs = _metric(times, weights, values, ok, cap)
            for run in runs:
                excursions.append({"site": site, "room": room, "metric": name} | run)
            figures[f"{name}_known_s"] = known
            figures[f"{name}_within_s"] = within
            totals[f"{name}_known_s"] += int(known)
            totals[f"{name}_within_s"] += int(within)
        totals["occupied_s"] += int(figures["occupied_s"])
        share_t = _share(figures["temperature_within_s"], figures["temperature_known_s"])
        share_l = _share(figures["light_within_s"], figures["light_known_s"])
        summary_rows.append(
            [
                site,
                room,
                round(figures["occupied_s"] / 3600, 3),
                share_t,
                share_l,
                sum(1 for e in excursions if (e["site"], e["room"]) == (site, room)),
                f"{limits.temperature_c.min}-{limits.temperature_c.max}",
                limits.lux_min,
            ]
        )
        labels.append(room if c.site else f"{site}/{room}")
        temp_share.append(share_t if share_t is not None else 0.0)
        lux_share.append(share_l if share_l is not None else 0.0)
    excursions.sort(key=lambda e: (e["from"], e["site"], e["room"]))
    # The profile's physical rules (room.*): not sensed, so listed for the district to confirm.
    requirements = []
    for site, room in sorted(rooms):
        profile = c.book.for_room(site, room).profile
        if words := profile.room.in_words():
            requirements.append([site, room, profile.id, "; ".join(words)])
    summary = {
        "rooms": len(rooms),
        "occupied_hours": round(totals["occupied_s"] / 3600, 3),
        "share_within_temperature": _share(
            totals["temperature_within_s"], totals["temperature_known_s"]
        ),
        "share_within_light": _share(totals["light_within_s"], totals["light_known_s"]),
        "excursions": len(excursions),
    }
    tables = [
        ReportTable(
            id="rooms",
            title="Occupied time within limits, by room",
            columns=[
                "site",
                "room",
                "occupied_hours",
                "share_within_temperature",
                "share_within_light",
                "excursions",
                "temperature_limits_c",
                "light_min_lux",
            ],
            rows=summary_rows,
        ),
        ReportTable(
            id="excursions",
            title="Every excursion outside the limits while occupied",
            columns=["site", "room", "metric", "from", "to", "minutes", "lowest", "highest"],
            rows=[
                [
                    e["site"],
                    e["room"],
                    e["metric"],
                    e["from"].isoformat(),
                    e["to"].isoformat(),
                    round((e["to"] - e["from"]).total_seconds() / 60, 2),
                    e["lowest"],
                    e["highest"],
                ]
                for e in excursions
            ],
        ),
        ReportTable(
            id="room_requirements",
            title="Physical requirements of the room's profile, to confirm (not sensed)",
            columns=["site", "room", "profile", "requirements"],
            rows=requirements,
        ),
    ]
    charts = [
        Chart(
            id="share_within",
            title="Share of occupied time within limits",
            x_label="room",
            y_label="share of occupied time",
            labels=labels,
            series={"temperature": temp_share, "light": lux_share},
        )
    ]
    notes = [
        "Occupied: the room reported occupied, or an episode was open. Each reading stands "
        f"for the time until the next one, at most {cap:g} s."
    ]
    return "Room environment", summary, tables, charts, notes


def _metric(
    times: list[datetime],
    weights: list[float],
    values: list[float | None],
    ok: Callable[[float], bool] | None,
    cap: float,
) -> tuple[float, float, list[dict[str, Any]]]:
    """Seconds with a reading, seconds within the limit, and the excursions: runs of
    consecutive readings outside it, each within ``cap`` of the one before."""
    known = within = 0.0
    runs: list[dict[str, Any]] = []
    run: dict[str, Any] | None = None
    if ok is None:
        return known, within, runs
    for i, value in enumerate(values):
        if value is None:
            continue
        weight = weights[i]
        known += weight
        inside = ok(value)
        if inside:
            within += weight
        contiguous = run is not None and i > 0 and weights[i - 1] < cap
        if run is not None and not inside and contiguous:
            run["to"] = times[i] + timedelta(seconds=weight)
            run["values"].append(value)
            continue
        if run is not None:
            runs.append(run)
            run = None
        if not inside:
            run = {"from": times[i], "to": times[i] + timedelta(seconds=weight), "values": [value]}
    if run is not None:
        runs.append(run)
    for r in runs:
        seen = r.pop("values")
        r["lowest"], r["highest"] = min(seen), max(seen)
    return known, within, runs


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


# --------------------------------------------------------------------- episodes

EPISODE_COLUMNS = [
    "episode_id",
    "site",
    "room",
    "date",
    "time_in",
    "time_out",
    "duration_min",
    "student_ref",
    "precipitating_factors",
    "initiated_by",
    "supervised_by",
    "removed_by",
    "behavior_before",
    "behavior_during",
    "behavior_after",
    "student_injury",
    "staff_injury",
    "injury_details",
    "parent_notified_at",
    "parent_notified_by",
    "parent_notified_whom",
    "parent_notification_method",
    "record_missing",
    "verdict",
    "verdict_failures",
]


def _episode_log(c: _Context) -> _Built:
    episodes = _episodes(c.engine, c.site, c.since, c.until)
    judged = verdicts(c.engine, [e.episode_id for e in episodes], c.config, c.now)
    rows: list[list[Any]] = []
    for e in episodes:
        cal = c.local(e)
        r = e.record
        v = judged.get(e.episode_id)
        failures = [i.id for i in v.items if i.outcome is Outcome.FAIL] if v else []
        rows.append(
            [
                e.episode_id,
                e.site,
                e.room,
                cal.local_date(e.started_at).isoformat(),
                _local_time(cal, e.started_at),
                _local_time(cal, e.ended_at),
                _minutes(e.duration_s),
                r.student_ref or "",
                r.precipitating_factors,
                r.initiated_by,
                r.supervised_by,
                r.removed_by,
                r.behavior_before,
                r.behavior_during,
                r.behavior_after,
                r.student_injury,
                r.staff_injury,
                r.injury_details,
                r.parent_notified_at.isoformat() if r.parent_notified_at else "",
                r.parent_notified_by,
                r.parent_notified_whom,
                r.parent_notification_method.value if r.parent_notification_method else "",
                " ".join(r.missing()),
                v.outcome.value if v else "",
                " ".join(failures),
            ]
        )
    outcomes = Counter(v.outcome.value for v in judged.values())
    months = Counter(c.calendar.local_date(e.started_at).strftime("%Y-%m") for e in episodes)
    summary = {
        "episodes": len(episodes),
        "open_episodes": sum(1 for e in episodes if e.ended_at is None),
        "records_complete": sum(1 for e in episodes if not e.record.missing()),
        "verdicts": {o.value: outcomes.get(o.value, 0) for o in Outcome},
    }
    charts = [
        Chart(
            id="by_month",
            title="Episodes by month",
            x_label="month",
            y_label="episodes",
            labels=sorted(months),
            series={"episodes": [float(months[m]) for m in sorted(months)]},
        ),
        Chart(
            id="verdicts",
            title="Episode verdicts",
            x_label="outcome",
            y_label="episodes",
            labels=[o.value for o in Outcome],
            series={"episodes": [float(outcomes.get(o.value, 0)) for o in Outcome]},
        ),
    ]
    notes = [
        "Fields: date, time in and out, duration, precipitating factors, staff who "
        "initiated, supervised and removed, behavior before, during and after (002 §8, "
        "004 I.B), injuries (004 II), parent notification (002 §9, 004 I.C). Times are local "
        "to each site; parent_notified_at is UTC."
    ]
    table_ = ReportTable(
        id="episodes",
        title="Episode log",
        columns=EPISODE_COLUMNS,
        rows=rows,
        pdf_columns=[
            "date",
            "time_in",
            "time_out",
            "duration_min",
            "site",
            "room",
            "student_ref",
            "initiated_by",
            "supervised_by",
            "removed_by",
            "student_injury",
            "staff_injury",
            "parent_notified_at",
            "verdict",
            "verdict_failures",
        ],
    )
    return "Episode log", summary, [table_], charts, notes


# --------------------------------------------------------------------- students


def _students(c: _Context) -> _Built:
    episodes = [e for e in _episodes(c.engine, c.site, c.since, c.until)]
    judged = verdicts(c.engine, [e.episode_id for e in episodes], c.config, c.now)
    threshold = _threshold(c)
    by_student: dict[str, list[_Episode]] = defaultdict(list)
    for e in episodes:
        by_student[e.record.student_ref or ""].append(e)
    rows: list[list[Any]] = []
    for ref, mine in sorted(by_student.items(), key=lambda kv: (kv[0] == "", kv[0])):
        days = sorted({c.local(e).local_date(e.started_at) for e in mine})
        seconds = [e.duration_s for e in mine if e.duration_s is not None]
        outcomes = Counter(
            judged[e.episode_id].outcome.value for e in mine if e.episode_id in judged
        )
        rows.append(
            [
                ref or "(no reference yet)",
                len(mine),
                len(days),
                round(sum(seconds) / 60, 2),
                round(sum(seconds) / 60 / len(seconds), 2) if seconds else None,
                _minutes(max(seconds)) if seconds else None,
                days[0].isoformat(),
                days[-1].isoformat(),
                days[threshold - 1].isoformat() if ref and len(days) >= threshold else "",
                *(outcomes.get(o.value, 0) for o in Outcome),
            ]
        )
    known = [r for r in rows if r[0] != "(no reference yet)"]
    top = sorted(known, key=lambda r: (-r[2], r[0]))[:25]
    summary = {
        "students": len(known),
        "episodes": len(episodes),
        "episodes_without_reference": len(by_student.get("", [])),
        "frequent_use_threshold_days": threshold,
        f"students_with_{threshold}_or_more_days": sum(1 for r in known if r[2] >= threshold),
    }
    table_ = ReportTable(
        id="students",
        title="Students: episodes, school days, minutes and verdicts",
        columns=[
            "student_ref",
            "episodes",
            "school_days",
            "total_minutes",
            "mean_minutes",
            "longest_minutes",
            "first_day",
            "last_day",
            f"day_{threshold}_reached",
            *(f"verdict_{o.value}" for o in Outcome),
        ],
        rows=rows,
    )
    chart = Chart(
        id="days",
        title=f"School days with an episode (top {len(top)} students)",
        x_label="student",
        y_label="school days",
        labels=[str(r[0]) for r in top],
        series={"school days": [float(r[2]) for r in top]},
        threshold=threshold,
    )
    notes = [
        "School days: distinct local dates with an episode in the period. "
        f"{threshold} or more in a school year needs additional steps (MN 125A.0942 "
        "subd. 2(d), seed 003)."
    ]
    return "Student summary", summary, [table_], [chart], notes


def _threshold(c: _Context) -> int:
    from roomwatch.core.policy import load_profile

    value = load_profile(c.config.default_profile).reporting.frequent_use_school_days
    return value or 10


# --------------------------------------------------------------------- district


def _quarter(calendar: SchoolCalendar, day: date) -> str:
    start, _ = calendar.school_year_of(day)
    q = ((day.month - start.month) % 12) // 3 + 1
    return f"{calendar.school_year_label(day)} Q{q}"


def _district(c: _Context) -> _Built:
    every = _episodes(c.engine, c.site, c.since, c.until)
    episodes = [e for e in every if e.ended_at is not None]
    threshold = _threshold(c)
    figures = durations.figures(e.duration_s or 0.0 for e in episodes)
    days: dict[str, set[date]] = defaultdict(set)
    count: Counter[str] = Counter()
    for e in episodes:
        ref = e.record.student_ref
        if ref:
            days[ref].add(c.local(e).local_date(e.started_at))
            count[ref] += 1
    frequent = {ref for ref, d in days.items() if len(d) >= threshold}
    by_site: dict[str, list[_Episode]] = defaultdict(list)
    by_room: dict[tuple[str, str], list[_Episode]] = defaultdict(list)
    by_quarter: dict[str, list[_Episode]] = defaultdict(list)
    for e in episodes:
        by_site[e.site].append(e)
        by_room[(e.site, e.room)].append(e)
        by_quarter[_quarter(c.local(e), c.local(e).local_date(e.started_at))].append(e)

    def students(group: Iterable[_Episode]) -> int:
        return len({e.record.student_ref for e in group if e.record.student_ref})

    def minutes(group: Iterable[_Episode]) -> float:
        return round(sum(e.duration_s or 0.0 for e in group) / 60, 2)

    summary: dict[str, Any] = {
        "incidents": len(episodes),
        "open_episodes_excluded": len(every) - len(episodes),
        "students": len(days),
        "incidents_without_student_ref": sum(1 for e in episodes if not e.record.student_ref),
        f"students_with_{threshold}_or_more_days": len(frequent),
        f"incidents_of_students_with_{threshold}_or_more_days": sum(count[r] for r in frequent),
        "student_injuries": sum(1 for e in episodes if e.record.student_injury),
        "staff_injuries": sum(1 for e in episodes if e.record.staff_injury),
        "injuries_not_recorded": sum(
            1 for e in episodes if e.record.student_injury is None or e.record.staff_injury is None
        ),
        "duration": figures.as_dict(),
    }
    tables = [
        ReportTable(
            id="durations",
            title="Length of incidents (whole minutes, rounded up)",
            columns=["minutes", "incidents", "share"],
            rows=[[label, n, _share(n, figures.count)] for label, n in figures.buckets.items()],
        ),
        ReportTable(
            id="by_school",
            title="By school (site)",
            columns=["site", "incidents", "students", "minutes"],
            rows=[[s, len(g), students(g), minutes(g)] for s, g in sorted(by_site.items())],
        ),
        ReportTable(
            id="by_room",
            title="By room",
            columns=["site", "room", "incidents", "students", "minutes"],
            rows=[[s, r, len(g), students(g), minutes(g)] for (s, r), g in sorted(by_room.items())],
        ),
        ReportTable(
            id="by_quarter",
            title="Students and incidents by quarter of the school year",
            columns=["quarter", "incidents", "students"],
            rows=[[q, len(g), students(g)] for q, g in sorted(by_quarter.items())],
        ),
    ]
    charts = [
        Chart(
            id="durations",
            title="Length of incidents",
            x_label="minutes",
            y_label="incidents",
            labels=list(figures.buckets),
            series={"incidents": [float(n) for n in figures.buckets.values()]},
        ),
        Chart(
            id="by_school",
            title="Incidents by school",
            x_label="site",
            y_label="incidents",
            labels=sorted(by_site),
            series={"incidents": [float(len(by_site[s])) for s in sorted(by_site)]},
        ),
        Chart(
            id="by_quarter",
            title="Incidents and students by quarter",
            x_label="quarter",
            y_label="count",
            labels=sorted(by_quarter),
            series={
                "incidents": [float(len(by_quarter[q])) for q in sorted(by_quarter)],
                "students": [float(students(by_quarter[q])) for q in sorted(by_quarter)],
            },
        ),
    ]
    notes = [
        "Figures as in the Minnesota legislative report (seed 003): incidents are ended "
        "episodes that started in the period; durations in whole minutes rounded up "
        "(mode: the smallest of equally frequent values); injuries count incidents with an "
        f"injury recorded. Students with {threshold} or more days count distinct local dates "
        "with an episode within the period (for the 125A.0942 subd. 2(d) rule, run the report "
        "for the school year, July 1 - June 30). Roomwatch sees room episodes only: physical "
        "holds must be added from other records."
    ]
    return "District report", summary, tables, charts, notes


_BUILDERS = {
    ReportKind.ENVIRONMENT: _environment,
    ReportKind.EPISODES: _episode_log,
    ReportKind.STUDENTS: _students,
    ReportKind.DISTRICT: _district,
}
