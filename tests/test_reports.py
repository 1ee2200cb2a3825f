"""Reports from a generated school year match figures computed here, independently, from the
generator's own list; every export carries the audit chain head; the PDFs render with their
charts (pdftoppm, then the chart's bars are looked for in the picture)."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import Engine

from compliance_world import ZONE, Generated, Year, config, generate_year, open_engine, telemetry
from roomwatch.collector import audit
from roomwatch.collector.storage import Store
from roomwatch.compliance.render import render
from roomwatch.compliance.reports import Report, build_report

YEAR = (date(2025, 7, 1), date(2026, 6, 30))
LOCAL = ZoneInfo(ZONE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Year]]:
    path = tmp_path_factory.mktemp("year") / "c.db"
    engine = open_engine(f"sqlite:///{path}")
    year = generate_year(engine, seed=11, episodes=2000, sites=3, rooms_per_site=8)
    yield engine, year
    engine.dispose()


def whole_minutes(g: Generated) -> int:
    return max(1, math.ceil((g.end - g.start).total_seconds() / 60))


def bucket(m: int) -> str:
    if m > 60:
        return "over 60"
    low = (m - 1) // 5 * 5 + 1
    return "5 or less" if low == 1 else f"{low}-{low + 4}"


def day(g: Generated) -> date:
    return g.start.astimezone(LOCAL).date()


def test_the_district_report_has_the_minnesota_figures(world: tuple[Engine, Year]) -> None:
    engine, year = world
    report = build_report(engine, "district", None, *YEAR, config())
    s = report.summary
    eps = year.episodes
    minutes = [whole_minutes(g) for g in eps]
    days: dict[str, set[date]] = defaultdict(set)
    for g in eps:
        if g.student_ref:
            days[g.student_ref].add(day(g))
    frequent = {ref for ref, d in days.items() if len(d) >= 10}
    counts = Counter(minutes)
    top = max(counts.values())

    assert s["incidents"] == len(eps) == 2000
    assert s["students"] == len(days)
    assert s["students_with_10_or_more_days"] == len(frequent) > 0
    assert s["incidents_of_students_with_10_or_more_days"] == sum(
        1 for g in eps if g.student_ref in frequent
    )
    assert s["student_injuries"] == sum(1 for g in eps if g.student_injury)
    assert s["staff_injuries"] == sum(1 for g in eps if g.staff_injury)
    assert s["incidents_without_student_ref"] == sum(1 for g in eps if g.student_ref is None)
    d = s["duration"]
    assert d["mode_min"] == min(m for m, c in counts.items() if c == top)
    assert d["median_min"] == statistics.median(minutes)
    assert d["mean_min"] == round(statistics.fmean(minutes), 2)
    assert d["buckets"] == {b: Counter(bucket(m) for m in minutes)[b] for b in d["buckets"]}
    by_school = {row[0]: row[1] for row in _table(report, "by_school").rows}
    assert by_school == dict(Counter(g.site for g in eps))
    by_room = {(row[0], row[1]): row[2] for row in _table(report, "by_room").rows}
    assert by_room == dict(Counter((g.site, g.room) for g in eps))
    assert len(by_room) == 24


def test_a_quarter_counts_only_its_episodes(world: tuple[Engine, Year]) -> None:
    engine, year = world
    report = build_report(engine, "district", "school-2", date(2025, 10, 1), date(2025, 12, 31),
                          config())  # fmt: skip
    expected = [
        g
        for g in year.episodes
        if g.site == "school-2" and date(2025, 10, 1) <= day(g) <= date(2025, 12, 31)
    ]
    assert report.summary["incidents"] == len(expected) > 0
    assert [row[0] for row in _table(report, "by_quarter").rows] == ["2025-26 Q2"]


def test_the_student_summary_counts_days_and_minutes(world: tuple[Engine, Year]) -> None:
    engine, year = world
    report = build_report(engine, "students", "school-1", *YEAR, config())
    rows = {row[0]: row for row in _table(report, "students").rows}
    mine = [g for g in year.episodes if g.site == "school-1" and g.student_ref]
    by_ref: dict[str, list[Generated]] = defaultdict(list)
    for g in mine:
        by_ref[g.student_ref or ""].append(g)
    assert set(rows) - {"(no reference yet)"} == set(by_ref)
    for ref, gs in by_ref.items():
        row = rows[ref]
        assert row[1] == len(gs)
        assert row[2] == len({day(g) for g in gs})
        assert row[3] == round(sum((g.end - g.start).total_seconds() for g in gs) / 60, 2)
        reached = sorted({day(g) for g in gs})
        assert row[8] == (reached[9].isoformat() if len(reached) >= 10 else "")
        assert sum(row[9:13]) == len(gs)  # a verdict for every episode


def test_the_episode_log_has_the_regulation_fields(world: tuple[Engine, Year]) -> None:
    engine, year = world
    report = build_report(engine, "episodes", "school-3", date(2026, 1, 1), date(2026, 1, 31),
                          config())  # fmt: skip
    (t,) = report.tables
    expected = sorted(
        (
            g
            for g in year.episodes
            if g.site == "school-3" and day(g).month == 1 and day(g).year == 2026
        ),
        key=lambda g: (g.start, g.episode_id),
    )
    assert [r[0] for r in t.rows] == [g.episode_id for g in expected]
    first, g = dict(zip(t.columns, t.rows[0], strict=True)), expected[0]
    assert first["date"] == day(g).isoformat()
    assert first["time_in"] == g.start.astimezone(LOCAL).strftime("%H:%M:%S")
    assert first["duration_min"] == round((g.end - g.start).total_seconds() / 60, 2)
    fields = ["precipitating_factors", "initiated_by", "supervised_by", "removed_by"]
    fields += ["behavior_before", "behavior_during", "behavior_after", "parent_notified_by"]
    for field in fields:
        assert first[field], field


def _table(report: Report, table_id: str):  # type: ignore[no-untyped-def]
    return next(t for t in report.tables if t.id == table_id)


def test_every_export_carries_the_chain_head(world: tuple[Engine, Year]) -> None:
    engine, _ = world
    head = audit.head_of(engine)
    report = build_report(engine, "district", None, *YEAR, config())
    assert report.audit_chain_head == head != audit.GENESIS
    assert json.loads(render(report, "json"))["audit_chain_head"] == head
    rows = list(csv.reader(io.StringIO(render(report, "csv").decode())))
    assert ["# audit_chain_head", head] in rows
    header = rows.index(["minutes", "incidents", "share"])
    assert rows[header + 1][:2] == [
        "5 or less",
        str(report.summary["duration"]["buckets"]["5 or less"]),
    ]
    assert f"audit chain head {head}".encode() in render(report, "pdf")  # the PDF's Subject


def blue_pixels(png: Path) -> int:
    """Pixels of matplotlib's first bar colour (#1f77b4), give or take anti-aliasing."""
    data = Image.open(png).convert("RGB").tobytes()
    return sum(
        1
        for i in range(0, len(data), 3)
        if abs(data[i] - 0x1F) < 12
        and abs(data[i + 1] - 0x77) < 12
        and abs(data[i + 2] - 0xB4) < 12
    )


@pytest.mark.parametrize(("kind", "site"), [("district", None), ("students", "school-1")])
def test_the_pdf_renders_with_its_charts(
    world: tuple[Engine, Year], tmp_path: Path, kind: str, site: str | None
) -> None:
    engine, _ = world
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render(build_report(engine, kind, site, *YEAR, config()), "pdf"))
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "2", pdf, tmp_path / "page"],
                   check=True)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    assert blue_pixels(pages[0]) == 0  # the summary page: text only
    assert blue_pixels(pages[1]) > 2000  # the chart page: bars


def test_the_environment_report_shares_and_excursions(tmp_path: Path) -> None:
    """One room, one episode, a reading every 10 s: 15 of 60 readings too hot (one run), 6
    too dark (one run), so 75 % and 90 % of the occupied time within the limits."""
    engine = open_engine(f"sqlite:///{tmp_path / 'c.db'}")
    from compliance_world import episode_messages

    start = date(2026, 2, 2)
    from datetime import UTC, datetime, time

    t0 = datetime.combine(start, time(10, 0), LOCAL).astimezone(UTC)
    messages = list(episode_messages("s", "r", "s.r.e1", t0, t0 + timedelta(seconds=600), 1))
    for i in range(60):
        hot, dark = 20 <= i < 35, 40 <= i < 46
        messages.append(
            telemetry("s", "r", t0 + timedelta(seconds=10 * i), 10 + i, episode_id="s.r.e1",
                      temperature_c=30.0 if hot else 21.0, lux=90.0 if dark else 300.0)
        )  # fmt: skip
    messages.append(telemetry("s", "r", t0 + timedelta(seconds=900), 99, occupied=False))
    Store(engine).write_batch([(m, t0) for m in messages])
    report = build_report(engine, "environment", "s", start, start, config())
    assert report.summary["share_within_temperature"] == 0.75
    assert report.summary["share_within_light"] == 0.9
    assert report.summary["occupied_hours"] == round(600 / 3600, 3)
    rows = _table(report, "excursions").rows
    assert [(r[2], r[3], r[5], r[7]) for r in rows] == [
        ("temperature", (t0 + timedelta(seconds=200)).isoformat(), 2.5, 30.0),
        ("light", (t0 + timedelta(seconds=400)).isoformat(), 1.0, 90.0),
    ]
    assert _table(report, "room_requirements").rows == []  # us-mn sets no room rules
    # room.* of the profile (Maine: 60 sq ft and a window, 003 App. B ME) are listed to confirm.
    maine = config(rooms={"s/r": {"profile": "us-me"}})
    report = build_report(engine, "environment", "s", start, start, maine)
    assert _table(report, "room_requirements").rows == [
        [
            "s",
            "r",
            "us-me",
            "floor area at least 60 sq ft; an observation window giving a clear line of sight",
        ]
    ]
    engine.dispose()


def test_the_environment_figures_need_no_database() -> None:
    """The aggregation is pure: readings in, shares and excursions out. A gap longer than
    the cap ends a run and counts only the cap."""
    from datetime import UTC, datetime

    from roomwatch.collector.read.records import StoredReading
    from roomwatch.compliance.report_environment import room_environment
    from roomwatch.core.policy import load_profile
    from roomwatch.core.rules import EnvironmentLimits

    limits = EnvironmentLimits.from_profile(load_profile("us-mn"))
    t0 = datetime(2026, 2, 2, 16, tzinfo=UTC)
    temps = [21.0, 30.0, 31.0, 21.0, 32.0]
    at = [0, 10, 20, 30, 400]  # the last reading comes after a gap of 370 s
    readings = [
        StoredReading("s", "r", t0 + timedelta(seconds=s), t, 300.0)
        for s, t in zip(at, temps, strict=True)
    ]
    env = room_environment(readings, limits, cap=60.0, interval_s=10.0)
    assert env.occupied_s == 10 + 10 + 10 + 60 + 10
    assert env.known_s["temperature"] == 100 and env.within_s["temperature"] == 70
    assert env.share("temperature") == 0.7 and env.share("light") == 1.0
    runs = [(e["metric"], e["from"], e["to"], e["lowest"], e["highest"]) for e in env.excursions]
    assert runs == [
        ("temperature", t0 + timedelta(seconds=10), t0 + timedelta(seconds=30), 30.0, 31.0),
        ("temperature", t0 + timedelta(seconds=400), t0 + timedelta(seconds=410), 32.0, 32.0),
    ]
