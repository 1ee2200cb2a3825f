"""The episode log (the fields of 002 §8 and 004 I.B, II; the parent notification of 002 §9,
004 I.C; the verdict) and the student summary (episodes, school days, minutes, verdicts)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from roomwatch.compliance.report_model import (
    Built,
    Chart,
    Context,
    ReportEpisode,
    ReportTable,
    minutes,
)
from roomwatch.compliance.verdicts import verdicts
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.verdict import Outcome, Verdict

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

EPISODE_PDF_COLUMNS = [
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
]

NO_REFERENCE = "(no reference yet)"


def _local_time(calendar: SchoolCalendar, at: datetime | None) -> str:
    return at.astimezone(calendar.zone).strftime("%H:%M:%S") if at else ""


def episode_row(e: ReportEpisode, cal: SchoolCalendar, v: Verdict | None) -> list[Any]:
    """One line of the episode log, times local to the episode's site."""
    r = e.record
    failures = [i.id for i in v.items if i.outcome is Outcome.FAIL] if v else []
    return [
        e.episode_id,
        e.site,
        e.room,
        cal.local_date(e.started_at).isoformat(),
        _local_time(cal, e.started_at),
        _local_time(cal, e.ended_at),
        minutes(e.duration_s),
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


def _count_chart(id_: str, title: str, x_label: str, counts: dict[str, int]) -> Chart:
    return Chart(
        id=id_,
        title=title,
        x_label=x_label,
        y_label="episodes",
        labels=list(counts),
        series={"episodes": [float(n) for n in counts.values()]},
    )


def episode_log(c: Context) -> Built:
    episodes = c.episodes()
    judged = verdicts(c.engine, [e.episode_id for e in episodes], c.config, c.now)
    rows = [episode_row(e, c.local(e), judged.get(e.episode_id)) for e in episodes]
    outcomes = Counter(v.outcome.value for v in judged.values())
    months = Counter(c.calendar.local_date(e.started_at).strftime("%Y-%m") for e in episodes)
    by_outcome = {o.value: outcomes.get(o.value, 0) for o in Outcome}
    summary = {
        "episodes": len(episodes),
        "open_episodes": sum(1 for e in episodes if e.ended_at is None),
        "records_complete": sum(1 for e in episodes if not e.record.missing()),
        "verdicts": by_outcome,
    }
    charts = [
        _count_chart(
            "by_month", "Episodes by month", "month", {m: months[m] for m in sorted(months)}
        ),
        _count_chart("verdicts", "Episode verdicts", "outcome", by_outcome),
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
        pdf_columns=EPISODE_PDF_COLUMNS,
    )
    return "Episode log", summary, [table_], charts, notes


def student_row(
    ref: str, mine: list[ReportEpisode], c: Context, judged: dict[str, Verdict], threshold: int
) -> list[Any]:
    """One student's line: episodes, school days, minutes, the day the threshold was
    reached and the verdicts by outcome."""
    days = sorted({c.local(e).local_date(e.started_at) for e in mine})
    seconds = [e.duration_s for e in mine if e.duration_s is not None]
    outcomes = Counter(judged[e.episode_id].outcome.value for e in mine if e.episode_id in judged)
    return [
        ref or NO_REFERENCE,
        len(mine),
        len(days),
        round(sum(seconds) / 60, 2),
        round(sum(seconds) / 60 / len(seconds), 2) if seconds else None,
        minutes(max(seconds)) if seconds else None,
        days[0].isoformat(),
        days[-1].isoformat(),
        days[threshold - 1].isoformat() if ref and len(days) >= threshold else "",
        *(outcomes.get(o.value, 0) for o in Outcome),
    ]


def students(c: Context) -> Built:
    episodes = c.episodes()
    judged = verdicts(c.engine, [e.episode_id for e in episodes], c.config, c.now)
    threshold = c.threshold()
    by_student: dict[str, list[ReportEpisode]] = defaultdict(list)
    for e in episodes:
        by_student[e.record.student_ref or ""].append(e)
    rows = [
        student_row(ref, mine, c, judged, threshold)
        for ref, mine in sorted(by_student.items(), key=lambda kv: (kv[0] == "", kv[0]))
    ]
    known = [r for r in rows if r[0] != NO_REFERENCE]
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
