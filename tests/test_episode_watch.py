"""Each profile's time rules against an open episode, on the virtual clock (POLICIES.md table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from roomwatch.core.episode_watch import Fact, WatchRules, WatchState, watch
from roomwatch.core.policy import StudentBand, load_profile

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run(
    rules: WatchRules,
    minutes: float,
    staff: dict[float, bool | None] | None = None,
    step_s: float = 1.0,
) -> list[tuple[float, Fact]]:
    """Watch an episode second by second; staff presence changes at the given seconds."""
    state, out = WatchState(), list[tuple[float, Fact]]()
    present: bool | None = True
    changes = dict(staff or {})
    t = 0.0
    while t <= minutes * 60:
        present = changes.get(t, present)
        state, facts = watch(state, rules, T0, present, True, T0 + timedelta(seconds=t))
        out.extend((t, f) for f in facts)
        t += step_s
    return out


def minutes_of(facts: list[tuple[float, Fact]], type_: str) -> list[float]:
    return [round(t / 60, 2) for t, f in facts if f.type == type_]


def checkpoints(facts: list[tuple[float, Fact]], checkpoint: str) -> list[float]:
    return [
        round(t / 60, 2) for t, f in facts if f.checkpoint and f.fields["checkpoint"] == checkpoint
    ]


@pytest.mark.parametrize(
    ("profile", "band", "warning_min", "limit_min"),
    [
        ("default", None, 12, 15),  # NY emergency default, seed 002 §6
        ("us-ny", None, 12, 15),
        ("us-ny-north-colonie", None, 16, 20),  # seed 004 I.E
        ("us-mi", StudentBand.ELEMENTARY, 12, 15),  # seed 003 App. B, Michigan
        ("us-mi", StudentBand.SECONDARY, 16, 20),
        ("us-mi", None, 12, 15),  # band unknown: the stricter limit
        ("us-ms", None, 16, 20),
        ("us-md", None, 24, 30),
        ("us-il", None, 24, 30),
        ("us-ct", None, 48, 60),
    ],
)
def test_warning_at_80_percent_then_exceeded_at_the_limit(
    profile: str, band: StudentBand | None, warning_min: float, limit_min: float
) -> None:
    facts = run(WatchRules.from_profile(load_profile(profile), band), limit_min + 2)
    assert minutes_of(facts, "time_limit_warning") == [warning_min]
    assert minutes_of(facts, "time_limit_exceeded") == [limit_min]


def test_a_room_override_replaces_the_profile_limit() -> None:
    facts = run(
        WatchRules.from_profile(load_profile("us-mi"), StudentBand.SECONDARY, limit_min=10), 12
    )
    assert minutes_of(facts, "time_limit_exceeded") == [10]


def test_connecticut_review_at_15_then_every_30_and_authorization_at_60() -> None:
    facts = run(WatchRules.from_profile(load_profile("us-ct")), 110)
    assert checkpoints(facts, "continuation_determination") == [15, 45, 75, 105]
    assert checkpoints(facts, "principal_authorization") == [60]


def test_oregon_authorization_every_15_after_30_and_water_every_30() -> None:
    facts = run(WatchRules.from_profile(load_profile("us-or")), 92)
    assert checkpoints(facts, "administrator_authorization") == [30, 45, 60, 75, 90]
    assert checkpoints(facts, "bathroom_and_water") == [30, 60, 90]


def test_north_colonie_calls_parents_at_20() -> None:
    facts = run(WatchRules.from_profile(load_profile("us-ny-north-colonie")), 25)
    assert checkpoints(facts, "parents_and_alternative") == [20]


def test_michigan_extension_checkpoint_follows_the_band() -> None:
    rules = WatchRules.from_profile(load_profile("us-mi"), StudentBand.SECONDARY)
    assert checkpoints(run(rules, 25), "extension_support") == [20]


def test_louisiana_records_an_observation_every_15_minutes() -> None:
    facts = run(WatchRules.from_profile(load_profile("us-la")), 46)
    assert checkpoints(facts, "observation_checkin") == [15, 30, 45]
    assert minutes_of(facts, "time_limit_exceeded") == [], "no state limit: the plan's applies"


def test_a_checkpoint_is_announced_once_even_when_ticks_are_sparse() -> None:
    facts = run(WatchRules.from_profile(load_profile("us-ct")), 50, step_s=600)
    assert checkpoints(facts, "continuation_determination") == [20, 50]
    occurrences = [
        f.fields["occurrence"]
        for _, f in facts
        if f.checkpoint and f.fields["checkpoint"] == "continuation_determination"
    ]
    assert occurrences == [1, 2]


def test_monitoring_lapse_after_more_than_10_seconds_away() -> None:
    rules = WatchRules.from_profile(load_profile("default"))
    facts = run(rules, 1, staff={5: False, 15: False, 40: True})
    lapses = [t for t, f in facts if f.type == "monitoring_lapse"]
    assert lapses == [16], "more than 10 s after leaving at 5 s"
    assert [f.fields["lapse_s"] for _, f in facts if f.type == "monitoring_restored"] == [35]


def test_a_short_absence_is_not_a_lapse() -> None:
    facts = run(WatchRules.from_profile(load_profile("default")), 1, staff={5: False, 14: True})
    assert minutes_of(facts, "monitoring_lapse") == []


def test_an_unknown_staff_sensor_counts_as_away() -> None:
    facts = run(WatchRules.from_profile(load_profile("default")), 1, staff={0: None})
    (lapse,) = [f for _, f in facts if f.type == "monitoring_lapse"]
    assert lapse.fields["reason"] == "staff sensor unknown"


def test_attention_while_overtime_or_unwatched() -> None:
    rules = WatchRules.from_profile(load_profile("default"))
    state, _ = watch(WatchState(), rules, T0, True, True, T0 + timedelta(minutes=14))
    assert not state.needs_attention
    state, _ = watch(state, rules, T0, True, True, T0 + timedelta(minutes=15))
    assert state.needs_attention


def test_a_repeating_checkpoint_stops_at_until_min() -> None:
    """checkpoints[].until_min: no bundled profile sets it; a district's own profile may."""
    ct = load_profile("us-ct")
    review = ct.checkpoints[0].model_copy(update={"until_min": 50})
    rules = WatchRules.from_profile(ct.model_copy(update={"checkpoints": [review]}))
    assert checkpoints(run(rules, 110), review.id) == [15, 45]
