"""The collector's authoritative rules, messages injected straight into its handler on the
virtual clock (Home Assistant's fire_message, the MQTT twin of drive_high())."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_until
from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.service import Collector
from roomwatch.core import wire
from roomwatch.core.clock import VirtualClock
from roomwatch.firmware_config import MqttSettings

SITE, ROOM = "lincoln", "room-5"


class Desk:
    """A collector that never connects: messages go in through on_message, time through tick."""

    def __init__(self, folder: Path, **config: Any) -> None:
        self.clock = VirtualClock()
        self.db = folder / "collector.db"
        self.collector = Collector(
            CollectorConfig(
                mqtt=MqttSettings(port=1),  # never connected in these tests
                database_url=f"sqlite:///{self.db}",
                **config,
            ),
            self.clock,
        )
        self.collector.open()
        self.seq = 0

    def send(self, kind: str, **fields: Any) -> None:
        body: dict[str, Any] = {
            "v": 1,
            "id": f"m{self.seq}",
            "ts": wire.format_ts(self.clock.now()),
            "site": SITE,
            "room": ROOM,
            **fields,
        }
        if kind != "status":
            body["seq"] = self.seq
        self.seq += 1
        self.collector.on_message(wire.topic(SITE, ROOM, kind), json.dumps(body).encode())

    def telemetry(self, **fields: Any) -> None:
        base = {
            "temperature_c": 21.0,
            "lux": 300.0,
            "co2_ppm": None,
            "occupied": True,
            "door_closed": True,
            "door_locked": False,
            "staff_present": True,
            "lock_permit": False,
            "episode_id": None,
        }
        self.send("telemetry", **{**base, **fields})

    def episode(self, event: str, episode_id: str = "e1", **fields: Any) -> None:
        started = fields.pop("started_at", wire.format_ts(self.clock.now()))
        self.send(
            "episode",
            event=event,
            episode_id=episode_id,
            started_at=started,
            ended_at=None if event != "ended" else wire.format_ts(self.clock.now()),
            reason="occupancy",
            **fields,
        )

    def status(self, state: str, profile: str = "default") -> None:
        self.send(
            "status",
            seq=None,
            state=state,
            agent_version="0.1.0",
            config_digest="d",
            profile=profile,
        )

    def wait(self, seconds: int, every: int = 1, telemetry: dict[str, Any] | None = None) -> None:
        """Let time pass, ticking; telemetry every 10 s as an agent would send it."""
        for t in range(1, seconds + 1):
            self.clock.advance(1)
            if telemetry is not None and t % 10 == 0:
                self.telemetry(**telemetry)
            if t % every == 0:
                self.collector.tick()

    def open_types(self) -> dict[str, wire.Severity]:
        return {
            a.type.value + (f"/{a.subject}" if a.subject else ""): a.severity
            for a in self.collector.desk.open.values()
        }

    def close(self) -> None:
        self.collector.stop()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.close()


IN_EPISODE = {"episode_id": "e1"}


def test_time_limit_warning_then_exceeded_then_resolved_at_episode_end(desk: Desk) -> None:
    desk.status("online", profile="us-ms")  # Mississippi: 20 minutes
    desk.episode("started")
    desk.telemetry(**IN_EPISODE)
    desk.wait(16 * 60 - 1, telemetry=IN_EPISODE)
    assert "time_limit_warning" not in desk.open_types()
    desk.wait(1, telemetry=IN_EPISODE)
    assert desk.open_types()["time_limit_warning"] is wire.Severity.WARNING
    desk.wait(4 * 60, telemetry=IN_EPISODE)
    types = desk.open_types()
    assert "time_limit_warning" not in types, "superseded by exceeded"
    assert types["time_limit_exceeded"] is wire.Severity.CRITICAL
    assert types["checkpoint_due/reassess_and_document#1"] is wire.Severity.WARNING
    desk.episode("ended")
    desk.telemetry(occupied=False, door_closed=False)
    assert desk.open_types() == {}


def test_connecticut_checkpoints_are_alerts_of_their_own(desk: Desk) -> None:
    desk.status("online", profile="us-ct")
    desk.episode("started")
    desk.wait(46 * 60, every=60, telemetry=IN_EPISODE)
    due = sorted(t for t in desk.open_types() if t.startswith("checkpoint_due"))
    assert due == [
        "checkpoint_due/continuation_determination#1",
        "checkpoint_due/continuation_determination#2",
    ]


def test_band_from_the_collector_config(tmp_path: Path) -> None:
    d = Desk(tmp_path, rooms={f"{SITE}/{ROOM}": {"profile": "us-mi", "student_band": "secondary"}})
    try:
        d.episode("started")
        d.wait(15 * 60 + 5, every=5, telemetry=IN_EPISODE)
        assert "time_limit_exceeded" not in d.open_types(), "secondary: 20 minutes"
        d.wait(5 * 60, every=5, telemetry=IN_EPISODE)
        assert "time_limit_exceeded" in d.open_types()
    finally:
        d.close()


def test_monitoring_lapse_after_ten_seconds_away_critical_then_restored(desk: Desk) -> None:
    desk.episode("started")
    desk.telemetry(**IN_EPISODE)
    desk.clock.advance(1)
    desk.telemetry(staff_present=False, **IN_EPISODE)
    desk.wait(10)
    assert "monitoring_lapse" not in desk.open_types()
    desk.wait(1)
    assert desk.open_types()["monitoring_lapse"] is wire.Severity.CRITICAL
    desk.telemetry(staff_present=True, **IN_EPISODE)
    assert "monitoring_lapse" not in desk.open_types()


def test_no_staff_sensor_means_no_lapse(desk: Desk) -> None:
    desk.episode("started")
    desk.telemetry(staff_present=None, **IN_EPISODE)
    desk.wait(60)
    assert "monitoring_lapse" not in desk.open_types()


@pytest.mark.parametrize(
    ("in_episode", "severity"), [(True, wire.Severity.CRITICAL), (False, wire.Severity.WARNING)]
)
def test_last_will_means_offline_critical_during_an_episode(
    desk: Desk, in_episode: bool, severity: wire.Severity
) -> None:
    if in_episode:
        desk.episode("started")
    desk.telemetry(**(IN_EPISODE if in_episode else {}))
    desk.status("offline")
    assert desk.open_types()["agent_offline"] is severity
    desk.status("online")
    assert "agent_offline" not in desk.open_types()


def test_silence_for_two_and_a_half_intervals_is_offline(desk: Desk) -> None:
    desk.telemetry()
    desk.wait(25)
    assert "agent_offline" not in desk.open_types()
    desk.wait(1)
    assert desk.open_types()["agent_offline"] is wire.Severity.WARNING
    desk.telemetry()
    assert "agent_offline" not in desk.open_types()


def test_sensor_faults_are_alerts_per_sensor_until_ok(desk: Desk) -> None:
    desk.send("event", type="sensor_fault", sensor="temperature", fault="bme280: no answer")
    desk.send("event", type="sensor_fault", sensor="presence", fault="ld2410 silent")
    assert set(desk.open_types()) == {"sensor_fault/temperature", "sensor_fault/presence"}
    desk.send("event", type="sensor_ok", sensor="temperature")
    assert set(desk.open_types()) == {"sensor_fault/presence"}


def test_late_messages_are_judged_by_their_own_time_and_say_so(desk: Desk) -> None:
    desk.clock.advance(600)
    stamp = desk.clock.now() - timedelta(seconds=300)  # arrives five minutes after it happened
    desk.collector.on_message(
        wire.topic(SITE, ROOM, "telemetry"),
        json.dumps(
            {
                "v": 1,
                "id": "late-1",
                "seq": 0,
                "ts": wire.format_ts(stamp),
                "site": SITE,
                "room": ROOM,
                "temperature_c": 21.0,
                "lux": 300,
                "co2_ppm": None,
                "occupied": True,
                "door_closed": True,
                "door_locked": True,
                "staff_present": True,
                "lock_permit": False,
                "episode_id": None,
            }
        ).encode(),
    )
    (alert,) = desk.collector.desk.open.values()
    assert alert.type is wire.AlertType.DOOR_LOCKED_WHILE_OCCUPIED
    assert alert.late is True
    assert alert.raised_at == stamp


def test_an_older_reading_replayed_after_a_newer_one_changes_nothing(desk: Desk) -> None:
    desk.telemetry(door_locked=True)
    old = wire.format_ts(desk.clock.now())
    desk.clock.advance(5)
    desk.telemetry(door_locked=False)
    assert desk.open_types() == {}
    desk.collector.on_message(
        wire.topic(SITE, ROOM, "telemetry"),
        json.dumps(
            {
                "v": 1,
                "id": "replayed",
                "seq": 0,
                "ts": old,
                "site": SITE,
                "room": ROOM,
                "temperature_c": 21.0,
                "lux": 300,
                "co2_ppm": None,
                "occupied": True,
                "door_closed": True,
                "door_locked": True,
                "staff_present": True,
                "lock_permit": False,
                "episode_id": None,
            }
        ).encode(),
    )
    assert desk.open_types() == {}


def test_a_restarted_collector_keeps_an_open_episode_and_its_alerts(tmp_path: Path) -> None:
    first = Desk(tmp_path)
    first.status("online", profile="us-ms")
    first.episode("started")
    first.wait(21 * 60, every=30, telemetry=IN_EPISODE)
    assert "time_limit_exceeded" in first.open_types()
    assert wait_until(lambda: first.collector.counters.stored >= first.seq)
    first.close()

    second = Desk(tmp_path)
    try:
        second.clock.advance(21 * 60)
        second.collector.tick()
        assert "time_limit_exceeded" in second.open_types(), "not resolved by a blank memory"
        db = sqlite3.connect(tmp_path / "collector.db")
        states = db.execute("select state from alert where type = 'time_limit_exceeded'").fetchall()
        assert len(states) == 1 and states[0][0] != "resolved", "one alert, still open"
    finally:
        second.close()


# ------------------------------------------------------------------- alert life


def test_an_unacknowledged_critical_alert_escalates_then_repeats(tmp_path: Path) -> None:
    d = Desk(tmp_path, notify={"tiers": [["json://127.0.0.1:9/a"], ["json://127.0.0.1:9/b"]]})
    try:
        d.telemetry(door_locked=True)
        (alert,) = d.collector.desk.open.values()
        assert (alert.state, alert.tier) == (wire.AlertState.RAISED, 1)
        locked = {"door_locked": True}
        d.wait(59, telemetry=locked)
        assert next(iter(d.collector.desk.open.values())).tier == 1
        d.wait(1, telemetry=locked)
        (alert,) = d.collector.desk.open.values()
        assert (alert.state, alert.tier) == (wire.AlertState.ESCALATED, 2)
        d.wait(60, telemetry=locked)
        (repeated,) = d.collector.desk.open.values()
        assert repeated.tier == 2 and repeated.notified_at == d.clock.now(), (
            "repeated at the top tier"
        )
    finally:
        d.close()


def test_an_acknowledged_alert_stops_escalating_and_records_who(desk: Desk) -> None:
    desk.telemetry(door_locked=True)
    (alert,) = desk.collector.desk.open.values()
    desk.wait(10, telemetry={"door_locked": True})
    desk.collector.acknowledge(alert.alert_id, "user-17")
    desk.wait(300, telemetry={"door_locked": True})
    (taken,) = desk.collector.desk.open.values()
    assert (taken.state, taken.acknowledged_by, taken.tier) == (
        wire.AlertState.ACKNOWLEDGED,
        "user-17",
        1,
    )
    desk.telemetry(door_locked=False)
    assert desk.open_types() == {}
    assert wait_until(lambda: desk.collector.counters.stored >= desk.seq)
    db = sqlite3.connect(desk.db)
    assert wait_until(
        lambda: (
            db.execute("select state, by from alert_transition order by id").fetchall()
            == [("raised", None), ("acknowledged", "user-17"), ("resolved", None)]
        )
    )


def test_warnings_do_not_escalate(desk: Desk) -> None:
    desk.episode("started")
    desk.telemetry(temperature_c=30.0, **IN_EPISODE)
    desk.wait(600, every=10, telemetry={"temperature_c": 30.0, **IN_EPISODE})
    temperature = next(
        a
        for a in desk.collector.desk.open.values()
        if a.type is wire.AlertType.TEMPERATURE_OUT_OF_RANGE
    )
    assert temperature.state is wire.AlertState.RAISED


def test_acknowledging_needs_an_open_alert_and_a_name(desk: Desk) -> None:
    from roomwatch.core.escalation import AcknowledgeError

    with pytest.raises(AcknowledgeError, match="no open alert"):
        desk.collector.acknowledge("nope", "user-1")
    desk.telemetry(door_locked=True)
    (alert,) = desk.collector.desk.open.values()
    with pytest.raises(AcknowledgeError, match="name"):
        desk.collector.acknowledge(alert.alert_id, " ")
    desk.collector.acknowledge(alert.alert_id, "user-1")
    with pytest.raises(AcknowledgeError, match="already acknowledged by user-1"):
        desk.collector.acknowledge(alert.alert_id, "user-2")


def test_going_offline_never_clears_a_locked_door(desk: Desk) -> None:
    desk.telemetry(door_locked=True)
    desk.status("offline")
    assert set(desk.open_types()) == {"door_locked_while_occupied", "agent_offline"}


def test_a_pending_end_holds_what_was_not_raised_and_never_withdraws_what_was(desk: Desk) -> None:
    # Staff walk away as the PIR falls (the end may be pending); the agent then goes quiet.
    # An agent that is silent holds nothing, so the lapse is raised; when the agent is heard
    # again with the same pending end, the critical alert must not be withdrawn on that
    # unconfirmed word (the agent itself keeps it): a still child may be in the room.
    desk.episode("started")
    desk.telemetry(door_closed=False, **IN_EPISODE)
    desk.clock.advance(60)
    left = wire.format_ts(desk.clock.now())
    away = {"door_closed": False, "staff_present": False, "vacated_at": left, **IN_EPISODE}
    desk.telemetry(**away)
    desk.wait(20)
    assert "monitoring_lapse" not in desk.open_types(), "held: due after the candidate exit"
    desk.wait(10)  # 30 s without a word: the hold is no longer trusted
    assert desk.open_types()["monitoring_lapse"] is wire.Severity.CRITICAL
    desk.telemetry(**away)  # heard again, the end still pending
    desk.wait(5, telemetry=away)
    assert desk.open_types()["monitoring_lapse"] is wire.Severity.CRITICAL
    desk.episode("ended")  # the end confirmed: the episode's time alerts go with it
    assert "monitoring_lapse" not in desk.open_types()
