"""Scheduled report delivery: the quarterly and annual reports reach a local receiver (Apprise
json://, files attached) ahead of the Minnesota due dates (seed 003), once per period."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from compliance_world import CALENDAR, episode_messages, open_engine
from conftest import free_port
from roomwatch.collector import audit
from roomwatch.collector.compliance_models import ReportDeliveryRow
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.storage import Store
from roomwatch.compliance.schedule import Period, ReportDeliveries, due_now, periods
from test_collector_notify import Receiver

LOCAL = ZoneInfo("America/Chicago")


def local(day: date, hh: int = 10) -> datetime:
    return datetime.combine(day, time(hh), LOCAL).astimezone(UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    store = Store(engine)
    for n, day in enumerate([date(2025, 10, 6), date(2025, 11, 3), date(2026, 2, 2)]):
        start = local(day)
        end = start + timedelta(minutes=7)
        messages = episode_messages("school-1", "r", f"e{n}", start, end, 10 * n + 1)
        store.write_batch([(m, end) for m in messages])
    yield engine
    engine.dispose()


def settings(*recipients: str) -> CollectorConfig:
    return CollectorConfig(
        school_calendar=CALENDAR,
        default_profile="us-mn",
        reports={"recipients": list(recipients), "formats": ["csv", "pdf"], "lead_days": 7},
    )


def test_minnesota_periods_and_due_dates() -> None:
    found = periods(["01-15", "04-15", "07-15", "10-15"], "07-15", "07-01", date(2026, 1, 1))
    assert Period("quarterly", date(2025, 10, 1), date(2025, 12, 31), date(2026, 1, 15)) in found
    assert Period("quarterly", date(2025, 7, 1), date(2025, 9, 30), date(2025, 10, 15)) in found
    assert Period("annual", date(2025, 7, 1), date(2026, 6, 30), date(2026, 7, 15)) in found


def test_a_profile_log_review_interval_schedules_a_review() -> None:
    """reporting.log_review_every_months (004 I.B "at least quarterly"; default: 3)."""
    found = periods([], None, "07-01", date(2026, 1, 1), review_every_months=3)
    assert Period("log review", date(2025, 10, 1), date(2025, 12, 31), date(2026, 1, 1)) in found
    assert Period("log review", date(2026, 1, 1), date(2026, 3, 31), date(2026, 4, 1)) in found
    default = CollectorConfig(
        school_calendar=CALENDAR, default_profile="default", reports={"lead_days": 7}
    )
    assert due_now(default, date(2025, 12, 24)) == []  # eight days ahead: not yet
    assert [(p.label, p.start) for p in due_now(default, date(2025, 12, 25))] == [
        ("log review", date(2025, 10, 1))
    ]
    # Minnesota has quarterly reports and no log review interval: only the quarterly one.
    mn = default.model_copy(update={"default_profile": "us-mn"})
    assert [p.label for p in due_now(mn, date(2026, 1, 8))] == ["quarterly"]


def test_the_quarterly_report_is_sent_a_week_ahead_once(engine: Engine, receiver: Receiver) -> None:
    config = settings(receiver.url("board"))
    early = ReportDeliveries(engine, config, lambda: local(date(2026, 1, 7)))
    assert early.run() == []  # eight days before Jan 15: not yet
    jobs = ReportDeliveries(engine, config, lambda: local(date(2026, 1, 8)))
    (row,) = jobs.run()
    assert row.ok and (row.period_start, row.period_end) == (date(2025, 10, 1), date(2025, 12, 31))
    (title,) = receiver.wait("board", 1)
    assert title.startswith("Roomwatch quarterly district report 2025-10-01 to 2025-12-31")
    (_, body) = receiver.got[0]
    files = {a["filename"]: base64.b64decode(a["base64"]) for a in body["attachments"]}
    name = "roomwatch-district-all-sites-2025-10-01-2025-12-31"
    assert set(files) == {f"{name}.csv", f"{name}.pdf"}
    assert files[f"{name}.pdf"].startswith(b"%PDF")
    rows = list(csv.reader(io.StringIO(files[f"{name}.csv"].decode())))
    assert ["# summary.incidents", "2"] in rows  # October and November; not February
    assert ["# audit_chain_head", audit.head_of(engine)] in rows
    assert row.chain_head == audit.head_of(engine)
    assert jobs.run() == []  # sent: not again
    assert len(receiver.got) == 1


def test_a_failed_delivery_is_recorded_and_tried_again(engine: Engine, receiver: Receiver) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    (row,) = ReportDeliveries(engine, settings(dead), lambda: local(date(2026, 7, 8))).run()[:1]
    assert not row.ok and row.error
    config = settings(receiver.url("board"))
    tried = ReportDeliveries(engine, config, lambda: local(date(2026, 7, 9))).run()
    assert sorted((r.ok, r.period_start) for r in tried) == [
        (True, date(2025, 7, 1)),  # the annual summary of the prior school year (seed 003)
        (True, date(2026, 4, 1)),  # the quarter April to June
    ]
    with Session(engine) as session:
        stored = session.exec(select(ReportDeliveryRow)).all()
    assert len(stored) == 2 and all(r.ok for r in stored)
