"""The school calendar and the deadlines it gives (seeds 002 §9, 004 I.C, 003)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from roomwatch.collector.config import CollectorConfig
from roomwatch.core import deadlines, durations
from roomwatch.core.calendar import DateRange, SchoolCalendar
from roomwatch.core.policy import load_profile

NY = ZoneInfo("America/New_York")
CAL = SchoolCalendar(
    timezone="America/New_York",
    holidays=[date(2026, 11, 26), date(2026, 11, 27)],
    breaks=[DateRange(first=date(2026, 12, 21), last=date(2027, 1, 1), name="winter")],
)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), NY)


def test_school_days_skip_weekends_holidays_and_breaks() -> None:
    assert CAL.is_school_day(date(2026, 11, 23))  # Monday
    assert not CAL.is_school_day(date(2026, 11, 28))  # Saturday
    assert not CAL.is_school_day(date(2026, 11, 26))  # Thanksgiving
    assert not CAL.is_school_day(date(2026, 12, 24))  # winter break
    assert CAL.next_school_day(date(2026, 11, 25)) == date(2026, 11, 30)
    assert CAL.next_school_day(date(2026, 12, 18)) == date(2027, 1, 4)
    assert CAL.school_days_between(date(2026, 11, 23), date(2026, 11, 29)) == 3


def test_an_episode_after_school_ends_belongs_to_the_next_school_day() -> None:
    monday = date(2026, 11, 23)
    assert CAL.school_day_of(local(monday, 10)) == monday
    assert CAL.school_day_of(local(monday, 16)) == date(2026, 11, 24)
    assert CAL.school_day_of(local(date(2026, 11, 28), 10)) == date(2026, 11, 30)  # Saturday


def test_end_of_school_day_and_within_one_school_day() -> None:
    wednesday = date(2026, 11, 25)  # Thursday and Friday are holidays
    at = local(wednesday, 9)
    assert CAL.end_of_school_day(at) == local(wednesday, 15, 30).astimezone(UTC)
    assert CAL.within_school_days(at, 1) == local(date(2026, 11, 30), 15, 30).astimezone(UTC)


def test_day_end_follows_daylight_saving_time() -> None:
    summer = CAL.day_end_at(date(2026, 10, 30))  # EDT, UTC-4
    winter = CAL.day_end_at(date(2026, 11, 2))  # EST, UTC-5
    assert (summer.hour, winter.hour) == (19, 20)


def test_the_school_year_runs_july_to_june_by_default() -> None:
    assert CAL.school_year_of(date(2026, 11, 23)) == (date(2026, 7, 1), date(2027, 6, 30))
    assert CAL.school_year_of(date(2026, 6, 30)) == (date(2025, 7, 1), date(2026, 6, 30))
    assert CAL.school_year_label(date(2027, 3, 1)) == "2026-27"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("ca-ab", local(date(2026, 11, 23), 10, 5)),  # immediately: 5 min from placement (000)
        ("us-ny", local(date(2026, 11, 23), 15, 30)),  # by the end of the school day (002 §9)
        ("us-ny-north-colonie", local(date(2026, 11, 24), 15, 30)),  # within 1 day (004 I.C)
    ],
)
def test_parent_notification_deadline_per_profile(profile: str, expected: datetime) -> None:
    rule = load_profile(profile).parent_notification
    started = local(date(2026, 11, 23), 10)
    assert deadlines.notification_deadline(rule, CAL, started) == expected.astimezone(UTC)


def test_the_tenth_school_day_with_an_episode_is_frequent_use() -> None:
    start = local(date(2026, 9, 1), 9)
    episodes = [
        deadlines.StudentEpisode("S1", f"e{n}", start + timedelta(days=n // 2, minutes=n))
        for n in range(20)  # two episodes a day for 10 days
    ]
    episodes.append(deadlines.StudentEpisode("S2", "x", start))
    (hit,) = deadlines.frequent_use(episodes, CAL, 10)
    assert (hit.student_ref, hit.days, hit.episode_id) == ("S1", 10, "e18")
    assert hit.reached_on == date(2026, 9, 10) and hit.school_year == "2026-27"
    assert deadlines.frequent_use(episodes[:18], CAL, 10) == []


def test_calendar_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        CollectorConfig.model_validate({"school_calendar": {"timezone": "Mars/Olympus"}})
    with pytest.raises(ValidationError, match=r"calendars\.school-1\.school_days\.0"):
        CollectorConfig.model_validate({"calendars": {"school-1": {"school_days": ["funday"]}}})
    with pytest.raises(ValidationError, match="last is before first"):
        CollectorConfig.model_validate(
            {"school_calendar": {"breaks": [{"first": "2026-12-24", "last": "2026-12-20"}]}}
        )
    config = CollectorConfig.model_validate(
        {"calendars": {"school-1": {"timezone": "America/Chicago", "day_end": "14:45"}}}
    )
    assert config.calendar_for("school-1").day_end == time(14, 45)
    assert config.calendar_for("other").day_end == time(15, 30)
    assert config.school_calendar.school_days[-1] == "fri"


def test_duration_figures_as_minnesota_reports_them() -> None:
    found = durations.figures([60, 300, 301, 600, 601, 3601, 240, 299])
    # minutes rounded up: 1, 5, 6, 10, 11, 61, 4, 5
    assert found.mode_min == 5 and found.median_min == 5.5 and found.max_min == 61
    assert found.buckets["5 or less"] == 4 and found.buckets["6-10"] == 2
    assert found.buckets["11-15"] == 1 and found.buckets["over 60"] == 1
    assert durations.figures([]).mean_min is None
