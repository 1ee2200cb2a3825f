"""Alert truth, as properties over random visits to a room (issue 13).

A hypothesis-generated trace of students coming and going (a PIR that pulses
while they move, a door that may be shut on them or opened before they leave,
staff who glance away and leave with them or after them) is played on the pure
room state machine at the agent's one-second sampling interval, and the
telemetry and episode messages it asks for are folded into the collector's room
view, whose conditions are evaluated every second, as the collector does. Then:

* each visit is one episode, starting at the first presence and ending no more
  than one sampling interval after the true exit (DESIGN.md "Episodes");
* no time-limit fact (agent) or condition (collector) for a visit shorter than
  the limit; no monitoring lapse for one in which staff were never away longer
  than the profile allows while the student was inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_world import telemetry
from roomwatch.core import room, wire
from roomwatch.core.episode_watch import WatchRules
from roomwatch.core.policy import load_profile
from roomwatch.core.room import Input
from roomwatch.core.room_view import RoomView, conditions, observe
from roomwatch.core.rules import EnvironmentLimits
from roomwatch.core.wire import AlertType

T0 = datetime.fromisoformat("2026-01-05T08:00:00+00:00")
HOLD_S, DEBOUNCE_S, LAPSE_S = 30, 60, 10
FITTED = frozenset({Input.DOOR_LOCK, Input.DOOR_CLOSED, Input.MOTION, Input.STAFF})
TIME_TYPES = {AlertType.TIME_LIMIT_EXCEEDED, AlertType.TIME_LIMIT_WARNING}


@dataclass(frozen=True)
class Visit:
    """One student's stay: the truth the sensors only partly see."""

    entry_s: int
    stay_s: int
    pulse_every_s: int  # the PIR fires this often while they move (under the hold)
    door_shut: bool  # the door is closed on them (a still child stays seen: sealed)
    still: bool  # with the door shut: they sit still after the first minute
    door_opens_before_s: int  # the door opens this long before they leave
    staff_glances: tuple[tuple[int, int], ...]  # (offset, seconds away), each under the lapse
    staff_leaves_after_s: int  # the adult leaves this long after the student

    @property
    def exit_s(self) -> int:
        return self.entry_s + self.stay_s


@st.composite
def visits(draw: st.DrawFn) -> list[Visit]:
    found: list[Visit] = []
    at = draw(st.integers(40, 80))  # after boot, once the room is known empty
    for _ in range(draw(st.integers(1, 3))):
        stay = draw(st.integers(20, 700))
        glances = draw(
            st.lists(
                st.tuples(st.integers(5, max(6, stay - 15)), st.integers(1, LAPSE_S - 1)),
                max_size=3,
            )
        )
        door_shut = draw(st.booleans())
        visit = Visit(
            entry_s=at,
            stay_s=stay,
            pulse_every_s=draw(st.integers(2, HOLD_S - 5)),
            door_shut=door_shut,
            still=door_shut and draw(st.booleans()),
            door_opens_before_s=draw(st.integers(0, 10)),
            staff_glances=tuple(sorted(glances)),
            staff_leaves_after_s=draw(st.integers(0, 30)),
        )
        found.append(visit)
        # Far enough apart to be separate episodes: hold, debounce and the adult's exit.
        at = visit.exit_s + HOLD_S + DEBOUNCE_S + 40 + draw(st.integers(0, 120))
    return found


def schedule(visit_list: list[Visit]) -> dict[int, list[tuple[Input, bool]]]:
    """Second -> the input changes at that second, in order."""
    at: dict[int, list[tuple[Input, bool]]] = {}

    def put(second: int, name: Input, value: bool) -> None:
        at.setdefault(second, []).append((name, value))

    for v in visit_list:
        put(v.entry_s - 2, Input.STAFF, True)  # the adult brings the student
        put(v.entry_s, Input.MOTION, True)
        door_opens = v.exit_s - v.door_opens_before_s
        if v.door_shut and door_opens > v.entry_s + 3:
            put(v.entry_s + 2, Input.DOOR_CLOSED, True)
            put(door_opens, Input.DOOR_CLOSED, False)
        moving_until = v.entry_s + 60 if v.still and door_opens > v.entry_s + 3 else v.exit_s
        for second in range(v.entry_s + 1, v.exit_s):
            if second < moving_until and (second - v.entry_s) % v.pulse_every_s == 0:
                put(second, Input.MOTION, True)
            elif second < moving_until and (second - v.entry_s) % v.pulse_every_s == 1:
                put(second, Input.MOTION, False)
        put(v.exit_s - 1, Input.MOTION, True)  # walking out
        put(v.exit_s, Input.MOTION, False)
        for offset, away in v.staff_glances:
            put(v.entry_s + offset, Input.STAFF, False)
            put(v.entry_s + offset + away, Input.STAFF, True)
        put(v.exit_s + v.staff_leaves_after_s, Input.STAFF, False)
    return at


@dataclass
class Played:
    started: dict[str, datetime] = field(default_factory=dict)
    ended: dict[str, datetime] = field(default_factory=dict)
    agent_facts: dict[str, set[str]] = field(default_factory=dict)
    collector: dict[str, set[AlertType]] = field(default_factory=dict)


def play(visit_list: list[Visit], rules: WatchRules, limits: EnvironmentLimits) -> Played:
    settings_ = room.RoomSettings("s", "r", FITTED, HOLD_S, DEBOUNCE_S, rules)
    state = room.initial_state(T0)
    view = RoomView("s", "r")
    seq = count()
    played = Played()
    changes = schedule(visit_list)
    end_s = max(v.exit_s for v in visit_list) + HOLD_S + DEBOUNCE_S + 60
    initial = [(Input.DOOR_LOCK, False), (Input.DOOR_CLOSED, False), (Input.MOTION, False)]
    changes.setdefault(0, [])[:0] = [*initial, (Input.STAFF, False)]

    def carry_out(actions: list[room.Action], now: datetime) -> None:
        nonlocal view
        for action in actions:
            message: wire.Message | None = None
            base: dict[str, Any] = {"id": f"m{next(seq)}", "ts": now, "site": "s", "room": "r"}
            base["seq"] = int(base["id"][1:])
            if isinstance(action, room.PublishTelemetry):
                message = wire.Telemetry.model_validate(
                    {
                        **base,
                        "temperature_c": None,
                        "lux": None,
                        "co2_ppm": None,
                        "occupied": state.occupied,
                        "door_closed": state.value(Input.DOOR_CLOSED),
                        "door_locked": state.value(Input.DOOR_LOCK),
                        "staff_present": state.value(Input.STAFF),
                        "lock_permit": state.permit,
                        "episode_id": state.episode.id if state.episode else None,
                        "vacated_at": state.vacated_at,
                    }
                )
            elif isinstance(action, room.PublishEpisode) and action.event != "checkpoint":
                if action.event == "started":
                    played.started[action.episode_id] = action.started_at
                else:
                    assert action.ended_at is not None
                    played.ended[action.episode_id] = action.ended_at
                message = wire.Episode.model_validate(
                    {
                        **base,
                        "event": wire.EpisodeEvent(action.event),
                        "episode_id": action.episode_id,
                        "started_at": action.started_at,
                        "ended_at": action.ended_at,
                        "reason": action.reason,
                    }
                )
            elif isinstance(action, room.PublishEvent) and "episode_id" in action.fields:
                episode = str(action.fields["episode_id"])
                played.agent_facts.setdefault(episode, set()).add(action.type)
            if message is not None:
                view = observe(view, message, now)

    for second in range(end_s + 1):
        now = T0 + timedelta(seconds=second)
        for name, value in changes.get(second, []):
            state, actions = room.step(state, room.InputChanged(name, value), now, settings_)
            carry_out(actions, now)
        state, actions = room.step(state, room.Tick(), now, settings_)
        if second % 10 == 0:  # the agent's periodic telemetry, besides the one on change
            actions.append(room.PublishTelemetry())
        carry_out(actions, now)
        for c in conditions(view, limits, rules, now, 10.0):
            if c.episode_id is not None:
                played.collector.setdefault(c.episode_id, set()).add(c.type)
    return played


PROFILE = load_profile("us-ny")
LIMITS = EnvironmentLimits.from_profile(PROFILE)


@settings(max_examples=60, deadline=None)
@given(visit_list=visits(), limit_min=st.sampled_from([2, 5, 10]))
def test_episodes_end_at_the_exit_and_raise_nothing_for_time_not_spent(
    visit_list: list[Visit], limit_min: int
) -> None:
    rules = WatchRules.from_profile(PROFILE, limit_min=limit_min, lapse_after_s=LAPSE_S)
    played = play(visit_list, rules, LIMITS)
    assert len(played.started) == len(visit_list), "one episode per visit"
    assert set(played.ended) == set(played.started), "every visit's episode ended"
    episodes = sorted(played.started, key=lambda e: played.started[e])
    for visit, episode in zip(visit_list, episodes, strict=True):
        entry = T0 + timedelta(seconds=visit.entry_s)
        exit_ = T0 + timedelta(seconds=visit.exit_s)
        began, ended = played.started[episode], played.ended[episode]
        assert began == entry
        assert ended - began <= exit_ - entry + timedelta(seconds=1), (visit, began, ended)
        raised = played.collector.get(episode, set())
        facts = played.agent_facts.get(episode, set())
        if visit.stay_s < limit_min * 60:
            assert AlertType.TIME_LIMIT_EXCEEDED not in raised, visit
            assert "time_limit_exceeded" not in facts, visit
        if visit.stay_s < rules.warning_s:  # type: ignore[operator]
            assert not raised & TIME_TYPES, visit
        # Staff glances are all under the lapse; the adult leaves with or after the student.
        assert AlertType.MONITORING_LAPSE not in raised, visit
        assert "monitoring_lapse" not in facts, visit


def test_a_visit_past_the_limit_still_raises_it() -> None:
    """The property above must be able to fail: the same harness sees a true overrun."""
    rules = WatchRules.from_profile(PROFILE, limit_min=2, lapse_after_s=LAPSE_S)
    visit = Visit(60, 200, 10, False, False, 0, (), 0)
    played = play([visit], rules, LIMITS)
    (episode,) = played.started
    assert AlertType.TIME_LIMIT_EXCEEDED in played.collector[episode]
    assert "time_limit_exceeded" in played.agent_facts[episode]
    assert played.ended[episode] == T0 + timedelta(seconds=260)


def test_staff_who_step_out_behind_a_closed_door_still_raise_the_lapse() -> None:
    rules = WatchRules.from_profile(PROFILE, lapse_after_s=LAPSE_S)
    visit = Visit(60, 300, 10, True, True, 5, ((100, 15),), 0)
    played = play([visit], rules, LIMITS)
    (episode,) = played.started
    assert AlertType.MONITORING_LAPSE in played.collector[episode]
    assert "monitoring_lapse" in played.agent_facts[episode]


# ------------------------------------------------- the collector's side of the hold


def _telemetry(at: datetime, seq: int, vacated_at: datetime | None) -> wire.Telemetry:
    return telemetry(
        "s", "r", at, seq, temperature_c=None, lux=None, episode_id="s.r.e1", vacated_at=vacated_at
    )


def _view_with_episode() -> RoomView:
    started = wire.Episode.model_validate(
        {
            "id": "e",
            "seq": 0,
            "ts": T0,
            "site": "s",
            "room": "r",
            "event": wire.EpisodeEvent.STARTED,
            "episode_id": "s.r.e1",
            "started_at": T0,
            "ended_at": None,
            "reason": "occupancy",
        }
    )
    return observe(RoomView("s", "r"), started, T0)


RULES_2MIN = WatchRules.from_profile(PROFILE, limit_min=2, lapse_after_s=LAPSE_S)


def _exceeded(view: RoomView, now: datetime) -> list[Any]:
    return [
        c
        for c in conditions(view, LIMITS, RULES_2MIN, now, 10.0)
        if c.type is AlertType.TIME_LIMIT_EXCEEDED
    ]


def test_the_collector_holds_what_falls_due_after_the_exit_and_raises_it_at_its_due_time() -> None:
    left = T0 + timedelta(seconds=110)
    view = observe(_view_with_episode(), _telemetry(left, 1, left), left)
    assert not _exceeded(view, T0 + timedelta(seconds=125)), "held: due after the exit"
    back = T0 + timedelta(seconds=130)
    view = observe(view, _telemetry(back, 2, None), back)  # seen again: no end after all
    (raised,) = _exceeded(view, back)
    assert raised.due_at == T0 + timedelta(seconds=120)


def test_the_collector_never_holds_for_an_agent_gone_silent_nor_past_the_bound() -> None:
    left = T0 + timedelta(seconds=110)
    view = observe(_view_with_episode(), _telemetry(left, 1, left), left)
    silent = left + timedelta(seconds=26)  # 2.5 telemetry intervals: offline
    assert _exceeded(view, silent), "an agent that went quiet cannot vouch for its room"
    # Still heard from, but pending far longer than any agent's hold and debounce.
    for n in range(2, 30):
        at = left + timedelta(seconds=10 * n)
        view = observe(view, _telemetry(at, n, left), at)
        if (at - left).total_seconds() <= 180:
            assert not _exceeded(view, at)
    assert _exceeded(view, left + timedelta(seconds=290))


def test_a_replacement_agent_numbering_afresh_is_followed_whatever_its_clock() -> None:
    """A swapped Pi (a new outbox: seq from 0, acked_seq -1) with its image's clock, months
    behind: its first reading, a door locked on someone, must reach the rules at once, not
    after millions of messages (found in review)."""
    from roomwatch.core.claimed_time import TimeWindow

    window = TimeWindow()
    now = datetime.fromisoformat("2026-12-03T09:00:00+00:00")
    old = _telemetry(now, 500_000, None).model_copy(update={"episode_id": None})
    view = observe(RoomView("s", "r"), old, now, window)
    later = now + timedelta(hours=1)
    status = wire.Status.model_validate(
        {
            "id": "st",
            "ts": later - timedelta(days=90),
            "site": "s",
            "room": "r",
            "state": "online",
            "agent_version": "1",
            "config_digest": "d",
            "profile": "us-ny",
            "acked_seq": -1,
        }
    )
    view = observe(view, status, later, window)
    locked = _telemetry(later - timedelta(days=90), 0, None).model_copy(
        update={"id": "fresh", "door_locked": True, "episode_id": None}
    )
    view = observe(view, locked, later, window)
    assert view.telemetry is not None and view.telemetry.door_locked is True
    found = {c.type for c in conditions(view, LIMITS, RULES_2MIN, later, 10.0)}
    assert AlertType.DOOR_LOCKED_WHILE_OCCUPIED in found
    # Then its numbers go on from there, below the old device's, and are followed.
    unlocked = locked.model_copy(update={"id": "next", "seq": 1, "door_locked": False})
    view = observe(view, unlocked, later + timedelta(seconds=10), window)
    assert view.telemetry is not None and view.telemetry.door_locked is False
