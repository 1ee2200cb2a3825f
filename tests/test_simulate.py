"""``roomwatch simulate``: the scenario format's errors, exit statuses and the JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from roomwatch.cli.main import main
from roomwatch.simulation.room import apply_order
from roomwatch.simulation.scenario import ConfigError, parse_scenario, to_seconds

GOOD = """\
duration: 3m
rooms:
  - id: room-101
    profile: us-mi
    student_band: elementary
steps:
  - at: 0s
    room: room-101
    set: {occupied: true, door_closed: true, staff_present: true}
  - at: 90s
    room: room-101
    set: {door_locked: true}
expect:
  - {alert: door_locked_while_occupied, room: room-101, between: [90s, 91s]}
  - {no_alert: time_limit_exceeded}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("2m30s", 150), ("1.5m", 90), (12, 12), ("7", 7)],
)
def test_times(text: str | int, seconds: float) -> None:
    assert to_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m", "-3", "1s2m", True])
def test_bad_times(text: str | bool) -> None:
    with pytest.raises(ValueError, match=r"is not a time|number of seconds"):
        to_seconds(text)


def test_a_good_scenario_parses() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.duration_s == 180
    assert scenario.rooms[0].site == "demo"
    assert scenario.steps[1].at == 90
    assert scenario.steps[1].set is not None and scenario.steps[1].set.door_locked is True


def test_errors_name_the_key_and_its_line() -> None:
    text = GOOD.replace("at: 90s", "at: 90x").replace("{door_locked: true}", "{door_lockd: true}")
    found = problems(text)
    assert "steps.1.at (line 10): '90x' is not a time" in found[0]
    assert found[1].startswith("steps.1.set.door_lockd (line 12): unknown key")


def test_unknown_profile_and_room_and_late_steps() -> None:
    assert "unknown policy profile 'us-zz'" in problems(GOOD.replace("us-mi", "us-zz"))[0]
    found = problems(
        GOOD.replace("    room: room-101\n    set: {door", "    room: room-9\n    set: {door")
    )
    assert found == ["steps.1.room (line 11): unknown room 'room-9'; the rooms are ['room-101']"]
    found = problems(GOOD.replace("at: 90s", "at: 4m"))
    assert found == ["steps.1.at (line 10): 240 s is after the end (180 s)"]


def test_faults_and_expectations_are_checked() -> None:
    found = problems(GOOD + "faults:\n  - {at: 1m, kind: agent_crash}\n")
    assert found == ["faults.0 (line 17): agent_crash needs `room`"]
    found = problems(GOOD + "faults:\n  - {at: 1m, kind: broker_down}\n")
    assert "broker_down needs `for`" in found[0]
    found = problems(GOOD.replace("{no_alert: time_limit_exceeded}", "{alert: fire}"))
    assert found[0].startswith("expect.1.alert (line 15): Input should be")
    found = problems(GOOD.replace("{no_alert: time_limit_exceeded}", "{when: 1m}"))
    assert "needs exactly one of: alert, no_alert, episode, action, no_action" in found[0]
    found = problems(GOOD.replace("between: [90s, 91s]", "between: [91s, 90s]"))
    assert "earliest first" in found[0]


def test_syntax_errors_have_a_line() -> None:
    assert problems("duration: 3m\nrooms: [\n") == [
        "(top level) (line 3): not valid YAML: expected the node content, but found '<stream end>'"
    ]
    assert problems("duration: 3m\nrooms:\n  - id: a\n    id: b\n") == [
        "(top level) (line 4): duplicate key 'id'"
    ]


def test_safer_changes_go_first_at_one_instant() -> None:
    assert apply_order({"staff_present": False, "door_closed": False}) == [
        "door_closed",
        "staff_present",
    ]
    assert apply_order({"door_locked": True, "occupied": True, "staff_present": True}) == [
        "staff_present",
        "occupied",
        "door_locked",
    ]


# ------------------------------------------------------------------------- the command


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_output_and_a_met_expectation(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    code, out, _ = invoke(str(path), "--json")
    assert code == 0
    body = json.loads(out)
    assert set(body) >= {"episodes", "alerts", "actions", "messages"}
    assert body["episodes"] == [
        {
            "room": "room-101",
            "episode_id": "demo.room-101.20260105T080000000Z",
            "start_s": 0.0,
            "end_s": None,
            "duration_s": None,
        }
    ]
    (alert,) = body["alerts"]
    assert alert["type"] == "door_locked_while_occupied"
    assert (alert["severity"], alert["raised_s"], alert["resolved_s"]) == ("critical", 90.0, None)
    assert alert["episode_id"] == "demo.room-101.20260105T080000000Z"
    assert {"room": "room-101", "at_s": 90.0, "action": "lock_released"} in body["actions"]
    m = body["messages"]
    assert m["published"] == m["delivered"] > 0
    assert (m["lost"], m["duplicates_stored"]) == (0, 0)


def test_an_unmet_expectation_exits_1_and_says_what_happened(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("between: [90s, 91s]", "between: [10s, 20s]"))
    code, out, err = invoke(str(path))
    assert code == 1
    assert (
        "[NOT MET] expected door_locked_while_occupied alert(s) in room-101 "
        "raised between 0:10 and 0:20" in out
    )
    assert (
        "happened: critical door_locked_while_occupied in room-101 raised at 1:30, unresolved"
        in out
    )
    assert "1 of 2 expectation(s) not met" in err


def test_an_invalid_file_exits_2_with_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("duration: 3m", "duration: soon"))
    code, out, err = invoke(str(path))
    assert code == 2
    assert out == ""
    assert "duration (line 1): 'soon' is not a time" in err
    assert "invalid scenario (1 problem(s))" in err


def test_stuck_and_presence_faults_are_checked() -> None:
    """`stuck` names a chip; a presence fault needs a room fitted with the radar."""
    found = problems(GOOD + "faults:\n  - {at: 1m, kind: stuck, room: room-101, for: 4h}\n")
    assert found == ["faults.0 (line 17): stuck needs `sensor`: temperature, light or co2"]
    fault = "faults:\n  - {at: 1m, kind: sensor_fault, room: room-101, sensor: presence, for: 1m}\n"
    assert problems(GOOD + fault) == [
        "faults.0.sensor (line 17): room-101 has no presence sensor (`presence: true`)"
    ]
    fitted = GOOD.replace(
        "student_band: elementary", "student_band: elementary\n    presence: true"
    )
    assert parse_scenario(fitted + fault).rooms[0].presence
    stuck = "faults:\n  - {at: 1m, kind: stuck, room: room-101, sensor: presence, for: 4h}\n"
    assert "stuck is for temperature, light or co2" in problems(fitted + stuck)[0]
    scenario = parse_scenario(
        GOOD.replace("duration: 3m", "duration: 5h")
        + ("faults:\n  - {at: 1m, kind: stuck, room: room-101, sensor: co2, for: 4h}\n")
    )
    assert scenario.faults[0].kind == "stuck" and scenario.faults[0].end == 60 + 4 * 3600


def test_simulate_json_shows_alberta_parents_overdue_from_the_placement() -> None:
    """The collector's deadline check runs in `roomwatch simulate` (issue 13): seed 000's
    "immediately" is 5 min from the placement, checked every 60 s."""
    library = Path(__file__).parent / "scenarios"
    code, out, err = invoke(str(library / "deadline-parents-ca-ab.yaml"), "--json")
    assert code == 0, err
    body = json.loads(out)
    (episode,) = body["episodes"]
    (overdue,) = [a for a in body["alerts"] if a["type"] == "parent_notification_overdue"]
    assert overdue["episode_id"] == episode["episode_id"]
    placed = episode["start_s"]
    assert placed + 5 * 60 < overdue["raised_s"] <= placed + 6 * 60


def test_a_scenario_may_start_at_another_time() -> None:
    later = GOOD.replace("duration: 3m", "duration: 3m\nstart: 2026-01-05T15:00:00Z")
    scenario = parse_scenario(later)
    assert scenario.start is not None and scenario.start.hour == 15
    for bad in ("15:00", "2026-01-05T15:00:00"):  # a number to YAML; no offset
        found = problems(GOOD.replace("duration: 3m", f"duration: 3m\nstart: {bad}"))
        assert any(p.startswith("start") for p in found), found
