"""The room state machine, on the virtual clock: occupancy, episodes, the interlock.

Cases come from POLICIES.md (LOCK: never locked while occupied; unknown counts
as occupied) and DESIGN.md principle 3.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from roomwatch.core import room
from roomwatch.core.clock import VirtualClock
from roomwatch.core.room import Input

ALL = frozenset({Input.DOOR_LOCK, Input.DOOR_CLOSED, Input.MOTION, Input.STAFF})
SETTINGS = room.RoomSettings("s", "r", ALL, occupancy_hold_s=30, empty_debounce_s=60)


class Room:
    """Drives the pure machine like the agent's shell does, and keeps every action."""

    def __init__(self, settings: room.RoomSettings = SETTINGS) -> None:
        self.clock = VirtualClock()
        self.settings = settings
        self.state = room.initial_state(self.clock.now())
        self.actions: list[room.Action] = []

    def send(self, event: room.RoomEvent) -> list[room.Action]:
        self.state, actions = room.step(self.state, event, self.clock.now(), self.settings)
        self.actions.extend(actions)
        return actions

    def set(self, name: Input, value: bool | None) -> list[room.Action]:
        return self.send(room.InputChanged(name, value))

    def wait(self, seconds: float) -> list[room.Action]:
        self.clock.advance(seconds)
        return self.send(room.Tick())

    def empty_and_unlocked(self) -> Room:
        for name in (Input.DOOR_LOCK, Input.MOTION, Input.STAFF):
            self.set(name, False)
        self.set(Input.DOOR_CLOSED, False)
        self.wait(31)
        return self

    def events(self, type_: str) -> list[room.PublishEvent]:
        return [a for a in self.actions if isinstance(a, room.PublishEvent) and a.type == type_]

    def episodes(self, event: str) -> list[room.PublishEpisode]:
        return [a for a in self.actions if isinstance(a, room.PublishEpisode) and a.event == event]


def test_a_booting_agent_withholds_the_permit_until_the_room_is_known_empty() -> None:
    r = Room()
    r.set(Input.MOTION, False)
    r.set(Input.DOOR_CLOSED, False)
    r.set(Input.DOOR_LOCK, False)
    assert r.state.occupied is None
    assert r.state.permit is False
    r.wait(29)
    assert r.state.permit is False, "still inside the hold after boot: unknown"
    r.wait(2)
    assert r.state.occupied is False
    assert r.state.permit is True


def test_motion_withdraws_the_permit_in_the_same_step_and_starts_an_episode() -> None:
    r = Room().empty_and_unlocked()
    actions = r.set(Input.MOTION, True)
    assert room.SetPermit(False) in actions
    assert r.state.permit is False
    assert r.state.episode is not None
    assert r.episodes("started")[0].reason == "occupancy"


def test_lock_engaged_while_occupied_releases_alarms_and_reports_at_once() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    actions = r.set(Input.DOOR_LOCK, True)
    assert actions[:2] == [room.SetPermit(False), room.SetAlarm(True)], "hardware first"
    assert room.PublishEvent("lock_released", {"permit_was": False, "occupied": True}) in actions
    assert room.PublishTelemetry() in actions
    assert r.state.lock_alarm


def test_a_lock_that_will_not_release_keeps_the_alarm_until_seen_open() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.DOOR_LOCK, True)
    r.set(Input.MOTION, False)
    r.wait(600)
    assert r.state.lock_alarm, "a mechanical bolt stays a critical alarm"
    assert len(r.events("lock_released")) == 1, "reported once, not on every tick"
    r.set(Input.DOOR_LOCK, None)
    assert r.state.lock_alarm, "an unknown lock is not an open lock"
    actions = r.set(Input.DOOR_LOCK, False)
    assert room.SetAlarm(False) in actions
    assert r.events("lock_cleared")


def test_lock_while_occupancy_unknown_counts_as_occupied() -> None:
    r = Room()  # just booted: occupancy unknown
    actions = r.set(Input.DOOR_LOCK, True)
    assert room.SetAlarm(True) in actions
    assert r.events("lock_released")


def test_lock_on_a_positively_empty_room_is_allowed() -> None:
    r = Room().empty_and_unlocked()
    actions = r.set(Input.DOOR_LOCK, True)
    assert not any(isinstance(a, room.SetAlarm) for a in actions)
    assert r.state.permit is True


def test_a_still_child_behind_a_closed_door_stays_occupied() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.DOOR_CLOSED, True)  # the door closes after motion: sealed
    r.set(Input.MOTION, False)
    r.wait(3600)  # the PIR sees nothing for an hour
    assert r.state.occupied is True
    assert r.state.permit is False
    assert r.state.episode is not None


def test_a_reboot_with_the_door_closed_keeps_the_permit_but_invents_no_episode() -> None:
    r = Room()
    r.set(Input.DOOR_LOCK, False)
    r.set(Input.MOTION, False)
    r.set(Input.DOOR_CLOSED, True)  # first reading after boot: closed
    r.wait(8 * 3600)  # all night
    assert r.state.occupied is None, "nobody knows who is behind that door"
    assert r.state.permit is False
    assert not r.episodes("started")
    r.set(Input.DOOR_CLOSED, False)  # morning: the door opens
    r.wait(29)
    assert r.state.occupied is None or r.state.occupied is True
    r.wait(2)
    assert r.state.occupied is False
    assert r.state.permit is True
    assert not r.episodes("started")


def test_motion_behind_a_closed_door_seals_the_room() -> None:
    r = Room()
    r.set(Input.DOOR_LOCK, False)
    r.set(Input.MOTION, False)
    r.set(Input.DOOR_CLOSED, True)
    r.set(Input.MOTION, True)  # someone is in there after all
    r.set(Input.MOTION, False)
    r.wait(3600)
    assert r.state.occupied is True
    assert r.episodes("started")


def test_a_restored_episode_goes_on_under_its_id_and_ends_when_empty() -> None:
    r = Room()
    episode = room.OpenEpisode("s.r.20260105T075000000Z", r.clock.now(), "occupancy")
    r.state = room.initial_state(r.clock.now(), episode)
    r.set(Input.DOOR_LOCK, False)
    r.set(Input.MOTION, False)
    r.set(Input.DOOR_CLOSED, False)
    assert r.state.permit is False, "an open episode withholds the permit"
    r.wait(31)
    r.wait(60)
    (ended,) = r.episodes("ended")
    assert ended.episode_id == episode.id and ended.reason == "room_empty"
    assert not r.episodes("started")


def test_the_room_empties_after_the_door_opens_and_the_hold_passes() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.DOOR_CLOSED, True)
    r.set(Input.MOTION, False)
    r.wait(120)
    r.set(Input.DOOR_CLOSED, False)
    r.wait(29)
    assert r.state.occupied is True, "within the hold after the last motion"
    r.wait(2)
    assert r.state.occupied is False
    assert r.state.episode is not None, "episode waits for the empty debounce"
    assert r.state.permit is False, "no permit while an episode is open"
    r.wait(59)
    assert r.state.episode is not None
    r.wait(1)
    assert r.state.episode is None
    ended = r.episodes("ended")[0]
    assert ended.reason == "room_empty"
    assert r.state.permit is True


def test_motion_during_the_debounce_keeps_the_episode() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.MOTION, False)
    r.wait(31 + 50)
    r.set(Input.MOTION, True)
    r.set(Input.MOTION, False)
    r.wait(31 + 50)
    assert len(r.episodes("started")) == 1
    assert not r.episodes("ended")


@pytest.mark.parametrize("sensor", [Input.MOTION, Input.DOOR_CLOSED])
def test_a_faulty_sensor_makes_the_room_unknown_and_withdraws_the_permit(sensor: Input) -> None:
    r = Room().empty_and_unlocked()
    assert r.state.permit is True
    r.set(sensor, None)
    assert r.state.occupied is None
    assert r.state.permit is False


def test_a_room_without_occupancy_sensors_is_never_empty() -> None:
    r = Room(room.RoomSettings("s", "r", frozenset({Input.DOOR_LOCK})))
    r.set(Input.DOOR_LOCK, False)
    r.wait(10_000)
    assert r.state.occupied is None
    assert r.state.permit is False


def test_presence_sensor_clears_a_sealed_room_positively() -> None:
    fitted = ALL | {Input.PRESENCE}
    r = Room(room.RoomSettings("s", "r", fitted, occupancy_hold_s=30, empty_debounce_s=60))
    for name in fitted:
        r.set(name, False)
    r.set(Input.PRESENCE, True)
    r.set(Input.DOOR_CLOSED, True)
    assert r.state.sealed
    r.set(Input.PRESENCE, False)
    assert r.state.occupied is False


def test_staff_button_starts_and_ends_an_episode() -> None:
    r = Room().empty_and_unlocked()
    r.send(room.StaffButton())
    assert r.state.episode is not None
    assert r.state.permit is False
    r.send(room.StaffButton())
    assert r.state.episode is None
    assert [e.reason for e in r.episodes("ended")] == ["staff_button"]


def test_episode_ids_are_unique_and_name_the_room() -> None:
    r = Room().empty_and_unlocked()
    r.send(room.StartEpisode())
    r.clock.advance(0.001)
    r.send(room.EndEpisode())
    r.clock.advance(0.001)
    r.send(room.StartEpisode())
    ids = [e.episode_id for e in r.episodes("started")]
    assert len(set(ids)) == 2
    assert all(i.startswith("s.r.") for i in ids)


def test_telemetry_is_asked_for_when_what_it_shows_changes() -> None:
    r = Room().empty_and_unlocked()
    assert room.PublishTelemetry() in r.set(Input.STAFF, True)
    assert room.PublishTelemetry() not in r.set(Input.STAFF, True)


# --------------------------------------------------------------- property test

VALUES = st.sampled_from([True, False, None])


class InterlockMachine(RuleBasedStateMachine):
    """Stuck, flapping, missing and nonsense inputs, in any order, at any pace."""

    def __init__(self) -> None:
        super().__init__()
        self.room = Room()
        self.permit_pin = False
        self.alarm_pin = False

    def _run(self, actions: list[room.Action]) -> None:
        for a in actions:
            if isinstance(a, room.SetPermit):
                self.permit_pin = a.granted
            elif isinstance(a, room.SetAlarm):
                self.alarm_pin = a.on

    @rule(name=st.sampled_from(list(Input)), value=VALUES)
    def input_changes(self, name: Input, value: bool | None) -> None:
        self._run(self.room.set(name, value))

    @rule(seconds=st.floats(min_value=0, max_value=200))
    def time_passes(self, seconds: float) -> None:
        self._run(self.room.wait(seconds))

    @rule()
    def button(self) -> None:
        self._run(self.room.send(room.StaffButton()))

    @invariant()
    def lock_and_possibly_occupied_means_released_and_alarmed(self) -> None:
        s = self.room.state
        if s.lock_danger:
            assert not self.permit_pin, "permit must be withdrawn in the same step"
            assert self.alarm_pin, "alarm must sound in the same step"

    @invariant()
    def permit_only_for_a_known_empty_room_without_episode(self) -> None:
        s = self.room.state
        if self.permit_pin:
            assert s.occupied is False and s.episode is None

    @invariant()
    def pins_match_the_state(self) -> None:
        assert self.permit_pin == self.room.state.permit


InterlockMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
TestInterlock = InterlockMachine.TestCase


def test_virtual_clock_never_runs_backwards() -> None:
    clock = VirtualClock(datetime.fromisoformat("2026-01-05T08:00:00+00:00"))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


# ------------------------------------------------------------ the end of an episode


def test_a_staff_episode_in_an_empty_room_waits_for_the_second_press() -> None:
    r = Room().empty_and_unlocked()
    r.wait(120)  # the room has long been empty
    r.send(room.StaffButton())
    r.wait(300)
    assert r.state.episode is not None, "an empty room does not end what staff started"
    r.send(room.StaffButton())
    (ended,) = r.episodes("ended")
    started = r.episodes("started")[0]
    assert ended.reason == "staff_button"
    assert ended.ended_at is not None
    assert (ended.ended_at - started.started_at).total_seconds() == 300


def test_the_end_recorded_is_the_exit_not_the_debounce() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    entered = r.clock.now()
    r.wait(240)
    r.set(Input.MOTION, False)  # the student walks out
    left = r.clock.now()
    assert r.state.vacated_at == left, "the end is pending from the last sight"
    r.wait(31)
    r.wait(60)
    (ended,) = r.episodes("ended")
    assert (ended.started_at, ended.ended_at) == (entered, left)


def test_a_sealed_room_has_no_pending_end_until_the_door_opens() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.DOOR_CLOSED, True)
    r.set(Input.MOTION, False)
    r.wait(100)
    assert r.state.vacated_at is None, "a still child behind a closed door is still there"
    r.set(Input.DOOR_CLOSED, False)
    opened = r.clock.now()
    assert r.state.vacated_at == opened
    r.wait(31)
    r.wait(60)
    (ended,) = r.episodes("ended")
    assert ended.ended_at == opened


def test_unknown_occupancy_never_holds_an_alert() -> None:
    r = Room().empty_and_unlocked()
    r.set(Input.MOTION, True)
    r.set(Input.MOTION, False)
    assert r.state.vacated_at is not None
    r.set(Input.DOOR_CLOSED, None)  # the door contact fails
    assert r.state.vacated_at is None
