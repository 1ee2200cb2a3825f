"""A sensor fault's severity follows what it blinds (core/sensor_roles.py, docs/alerts.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roomwatch.core import room_view, wire
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import load_profile
from roomwatch.core.room import Input
from roomwatch.core.rules import EnvironmentLimits
from roomwatch.core.sensor_roles import SENSOR_ROLES, SensorRole, fault_severity
from roomwatch.edge_agent.agent import TELEMETRY_FIELDS

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PROFILE = load_profile("default")
LIMITS = EnvironmentLimits.from_profile(PROFILE)
RULES = WatchRules.from_profile(PROFILE)
DOCS = Path(__file__).parents[1] / "docs" / "alerts.md"

SAFETY = ["motion", "presence", "camera", "door_closed", "door_lock", "staff"]
ENVIRONMENT = ["temperature", "light", "co2", "humidity"]

_seq = iter(range(10**6))


def _common(at: datetime) -> dict[str, Any]:
    n = next(_seq)
    return {"id": f"m{n}", "seq": n, "ts": at, "site": "s", "room": "r"}


def fault(sensor: str, at: datetime = T0) -> wire.Event:
    return wire.Event.model_validate(
        {**_common(at), "type": "sensor_fault", "sensor": sensor, "fault": f"{sensor}: silent"}
    )


def started(at: datetime = T0) -> wire.Episode:
    return wire.Episode.model_validate(
        {
            **_common(at),
            "event": wire.EpisodeEvent.STARTED,
            "episode_id": "e1",
            "started_at": at,
            "ended_at": None,
            "reason": "occupied",
        }
    )


def fault_alerts(*messages: wire.Message) -> dict[str | None, wire.Severity]:
    view = room_view.RoomView("s", "r")
    for message in messages:
        view = room_view.observe(view, message, message.ts)
    found = room_view.conditions(view, LIMITS, RULES, T0 + timedelta(seconds=1), 10.0)
    return {c.subject: c.severity for c in found if c.type is wire.AlertType.SENSOR_FAULT}


@pytest.mark.parametrize("sensor", SAFETY)
def test_a_blind_safety_sensor_during_an_episode_is_critical(sensor: str) -> None:
    assert fault_alerts(started(), fault(sensor)) == {sensor: wire.Severity.CRITICAL}


@pytest.mark.parametrize("sensor", ENVIRONMENT)
def test_a_blind_environment_sensor_is_a_warning_even_during_an_episode(sensor: str) -> None:
    assert fault_alerts(started(), fault(sensor)) == {sensor: wire.Severity.WARNING}


@pytest.mark.parametrize("sensor", [*SAFETY, *ENVIRONMENT, "flux-capacitor"])
def test_outside_an_episode_every_fault_is_a_warning(sensor: str) -> None:
    assert fault_alerts(fault(sensor)) == {sensor: wire.Severity.WARNING}


def test_an_unknown_sensor_counts_as_safety() -> None:
    """We cannot know what it blinds, so during an episode it pages."""
    assert fault_alerts(started(), fault("flux-capacitor")) == {
        "flux-capacitor": wire.Severity.CRITICAL
    }


def test_each_sensor_is_judged_on_its_own() -> None:
    assert fault_alerts(started(), fault("co2"), fault("presence")) == {
        "co2": wire.Severity.WARNING,
        "presence": wire.Severity.CRITICAL,
    }


def test_the_table_names_every_sensor_the_agent_reports() -> None:
    """The sampled sensors (by role) are environment; every state-machine input is safety."""
    assert {n: SENSOR_ROLES[n] for n in TELEMETRY_FIELDS} == dict.fromkeys(
        TELEMETRY_FIELDS, SensorRole.ENVIRONMENT
    )
    assert {i.value: SENSOR_ROLES[i.value] for i in Input} == dict.fromkeys(
        (i.value for i in Input), SensorRole.SAFETY
    )
    assert set(SENSOR_ROLES) == {*SAFETY, *ENVIRONMENT}


def test_docs_show_the_table_as_the_code_has_it() -> None:
    """docs/alerts.md lists each sensor with its severity in and out of an episode."""
    rows = re.findall(
        r"^\| `([a-z_0-9]+)`[^|]*\| [^|]*\| (critical|warning) \| (warning) \|",
        DOCS.read_text(),
        re.M,
    )
    shown = {name: in_episode for name, in_episode, _ in rows}
    expected = {n: fault_severity(n, True).value for n in SENSOR_ROLES}
    assert shown == expected
