"""The collector's pure rules: conditions from telemetry, and the alert book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from roomwatch.core import rules, wire
from roomwatch.core.policy import load_profile

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LIMITS = rules.EnvironmentLimits.from_profile(load_profile("default"))
MA = rules.EnvironmentLimits.from_profile(load_profile("us-ma"))


def telemetry(**changes: Any) -> wire.Telemetry:
    base: dict[str, Any] = {
        "id": "m",
        "seq": 1,
        "ts": T0,
        "site": "s",
        "room": "r",
        "temperature_c": 21.0,
        "lux": 300.0,
        "co2_ppm": 600.0,
        "occupied": True,
        "door_closed": True,
        "door_locked": False,
        "staff_present": True,
        "lock_permit": False,
        "episode_id": "e1",
    }
    return wire.Telemetry.model_validate({**base, **changes})


def types(t: wire.Telemetry, limits: rules.EnvironmentLimits = LIMITS) -> set[wire.AlertType]:
    return {c.type for c in rules.telemetry_conditions(t, limits)}


def test_a_calm_occupied_room_raises_nothing() -> None:
    assert types(telemetry()) == set()


@pytest.mark.parametrize("occupied", [True, None])
def test_locked_while_occupied_or_unknown_is_critical(occupied: bool | None) -> None:
    (condition,) = rules.telemetry_conditions(
        telemetry(door_locked=True, occupied=occupied), LIMITS
    )
    assert condition.type is wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED
    assert condition.severity is wire.Severity.CRITICAL


def test_locked_and_empty_without_episode_is_fine() -> None:
    assert types(telemetry(door_locked=True, occupied=False, episode_id=None)) == set()


def test_locked_during_an_episode_is_critical_even_if_the_room_reads_empty() -> None:
    assert wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED in types(
        telemetry(door_locked=True, occupied=False)
    )


def test_seclusion_prohibited_only_where_the_profile_forbids_it() -> None:
    alone = telemetry(door_closed=True, staff_present=False)
    assert wire.AlertType.SECLUSION_PROHIBITED in types(alone, MA)
    assert wire.AlertType.SECLUSION_PROHIBITED not in types(alone, LIMITS)
    assert wire.AlertType.SECLUSION_PROHIBITED not in types(
        telemetry(door_closed=False, staff_present=False), MA
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"temperature_c": 17.9}, wire.AlertType.TEMPERATURE_OUT_OF_RANGE),
        ({"temperature_c": 27.1}, wire.AlertType.TEMPERATURE_OUT_OF_RANGE),
        ({"lux": 149.0}, wire.AlertType.LIGHT_BELOW_MINIMUM),
        ({"co2_ppm": 1001.0}, wire.AlertType.VENTILATION_POOR),
    ],
)
def test_environment_limits_while_occupied(
    changes: dict[str, Any], expected: wire.AlertType
) -> None:
    assert types(telemetry(**changes)) == {expected}
    assert types(telemetry(occupied=False, episode_id=None, **changes)) == set(), (
        "only while occupied"
    )


def test_environment_edges_are_within_limits() -> None:
    assert types(telemetry(temperature_c=18.0, lux=150.0, co2_ppm=1000.0)) == set()


def test_missing_readings_raise_no_environment_alert() -> None:
    assert types(telemetry(temperature_c=None, lux=None, co2_ppm=None)) == set()


def test_reconcile_raises_once_then_resolves_when_cleared() -> None:
    book: dict[rules.AlertKey, rules.OpenAlert] = {}

    def feed(t: wire.Telemetry, at: datetime) -> list[rules.Transition]:
        transitions = rules.reconcile(
            book, "s", "r", rules.telemetry_conditions(t, LIMITS), rules.TELEMETRY_TYPES, at
        )
        for tr in transitions:
            if tr.state is wire.AlertState.RESOLVED:
                book.pop(tr.alert.key)
            else:
                book[tr.alert.key] = tr.alert
        return transitions

    (raised,) = feed(telemetry(door_locked=True), T0)
    assert raised.state is wire.AlertState.RAISED
    assert feed(telemetry(door_locked=True), T0 + timedelta(seconds=1)) == [], (
        "one open alert per type"
    )
    (resolved,) = feed(telemetry(), T0 + timedelta(seconds=2))
    assert resolved.state is wire.AlertState.RESOLVED
    assert resolved.alert.alert_id == raised.alert.alert_id
    assert resolved.at == T0 + timedelta(seconds=2)


def test_a_replayed_older_reading_never_resolves_before_the_raise() -> None:
    raised = rules.reconcile(
        {},
        "s",
        "r",
        rules.telemetry_conditions(telemetry(door_locked=True), LIMITS),
        rules.TELEMETRY_TYPES,
        T0,
    )
    book = {raised[0].alert.key: raised[0].alert}
    earlier = T0 - timedelta(seconds=30)  # an outbox replay of a reading from before
    (resolved,) = rules.reconcile(book, "s", "r", [], rules.TELEMETRY_TYPES, earlier)
    assert resolved.state is wire.AlertState.RESOLVED
    assert resolved.at == T0


def test_reconcile_leaves_other_rooms_and_other_owners_alone() -> None:
    other = rules.OpenAlert(
        "x",
        "s",
        "other",
        wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED,
        wire.Severity.CRITICAL,
        wire.AlertState.RAISED,
        None,
        T0,
        "m",
    )
    offline = rules.OpenAlert(
        "y",
        "s",
        "r",
        wire.AlertType.AGENT_OFFLINE,
        wire.Severity.WARNING,
        wire.AlertState.RAISED,
        None,
        T0,
        "m",
    )
    book = {other.key: other, offline.key: offline}
    assert rules.reconcile(book, "s", "r", [], rules.TELEMETRY_TYPES, T0) == []


def test_each_episode_gets_its_own_alert() -> None:
    book: dict[rules.AlertKey, rules.OpenAlert] = {}
    first = rules.reconcile(
        book,
        "s",
        "r",
        rules.telemetry_conditions(telemetry(door_locked=True), LIMITS),
        rules.TELEMETRY_TYPES,
        T0,
    )
    book[first[0].alert.key] = first[0].alert
    second = rules.reconcile(
        book,
        "s",
        "r",
        rules.telemetry_conditions(telemetry(door_locked=True, episode_id="e2"), LIMITS),
        rules.TELEMETRY_TYPES,
        T0,
    )
    assert {t.state for t in second} == {wire.AlertState.RAISED, wire.AlertState.RESOLVED}


def test_ids_fit_the_wire_for_the_longest_site_and_room_names() -> None:
    site, room = "s" * 63, "r" * 63  # the longest ids ID_PATTERN allows
    longest_type = max(wire.AlertType, key=lambda t: len(t.value))
    alert = wire.Alert(
        id="x",
        ts=T0,
        site=site,
        room=room,
        alert_id=rules.alert_id(site, room, longest_type, T0),
        type=longest_type,
        severity=wire.Severity.WARNING,
        state=wire.AlertState.RAISED,
        episode_id=f"{site}.{room}.20261123T090000000Z",
        raised_at=T0,
        message="m",
    )
    assert wire.decode(wire.topic_of(alert), wire.encode(alert)) == wire.Decoded(
        wire.Topic(site, room, wire.Kind.ALERTS), alert
    )
