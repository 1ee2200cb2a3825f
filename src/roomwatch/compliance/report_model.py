"""What a report is (tables, charts, summary figures, the audit chain head), and what its
builders share: the episodes of the period and the context they are built in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.read.report_rows import episodes_started_between
from roomwatch.compliance.context import Rulebook
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.incident import IncidentRecord


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


@dataclass(frozen=True, slots=True)
class ReportEpisode:
    episode_id: str
    site: str
    room: str
    started_at: datetime
    ended_at: datetime | None
    record: IncidentRecord

    @property
    def duration_s(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None


@dataclass(frozen=True, slots=True)
class Context:
    engine: Engine
    config: CollectorConfig
    book: Rulebook
    calendar: SchoolCalendar
    site: str | None
    since: datetime
    until: datetime
    now: datetime

    def local(self, e: ReportEpisode) -> SchoolCalendar:
        return self.config.calendar_for(e.site)

    def episodes(self) -> list[ReportEpisode]:
        """The episodes that started in the period, by start time."""
        return [
            ReportEpisode(e.episode_id, e.site, e.room, e.started_at, e.ended_at, record)
            for e, record in episodes_started_between(
                self.engine, self.site, self.since, self.until
            )
        ]

    def threshold(self) -> int:
        """The frequent-use count of school days (the default profile's; 10 without one)."""
        from roomwatch.core.policy import load_profile

        value = load_profile(self.config.default_profile).reporting.frequent_use_school_days
        return value or 10


#: What a builder gives: title, summary, tables, charts and notes.
Built = tuple[str, dict[str, Any], list[ReportTable], list[Chart], list[str]]


def minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 2) if seconds is not None else None


def share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
