"""The room state machine: occupancy fusion, episodes and the lock interlock. Pure.

``step(state, event, now, settings) -> (state, actions)``. It never reads the
time, a pin or a socket: the agent's shell feeds it events (pin edges, clock
ticks, staff commands) and carries out the actions it returns (drive the
permit relay, sound the alarm, publish).

The safety rules, from DESIGN.md principle 3 and POLICIES.md (LOCK):

* The lock permit is granted only while the room is *positively* empty and
  no episode is open. Unknown or stale occupancy counts as occupied.
* A lock sensed engaged while the room may be occupied (or an episode is
  open) is answered in the same step: withdraw the permit, sound the alarm,
  publish ``lock_released``. The alarm stays on until the lock is seen open.
* Occupancy fusion: motion (PIR) or presence (mmWave) means occupied. A door
  closed on an occupied room, or presence seen behind a closed door, *seals*
  it: it stays occupied, even if the PIR goes quiet (a still child), until the
  door opens or a presence sensor positively reports the room empty. A door
  closed while occupancy is unknown (just after boot) keeps it unknown the
  same way: the permit stays withdrawn, but no episode is invented. A faulty
  sensor is unknown.
* The camera (docs/camera.md) is a second presence sensor, fused like the
  mmWave: seeing someone means occupied (and seals a closed room); a blind,
  covered or failed camera is unknown, so occupied for the permit; and a
  sealed room is released only when every fitted presence sensor (mmWave and
  camera) positively reports it empty.
* The end of an episode is the moment the student left (docs/alerts.md, "When
  an episode ends"): the empty debounce only *confirms* it. While an end is
  pending (an episode open, no one seen, the room not sealed) the candidate
  exit is ``vacated_at``; the watch holds every time and lapse fact that falls
  due after it, drops them when the end is confirmed, and raises them if
  someone is seen again. The lock rule is never held.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from roomwatch.core.episode_watch import WatchRules, WatchState, watch

# ----------------------------------------------------------------------- inputs


class Input(StrEnum):
    """The binary inputs the machine fuses. A value of ``None`` means unknown/faulty."""

    DOOR_LOCK = "door_lock"  # True = bolt thrown / magnet bonded
    DOOR_CLOSED = "door_closed"
    MOTION = "motion"  # PIR
    PRESENCE = "presence"  # mmWave: sees a still child
    CAMERA = "camera"  # camera occupancy: sees a still child too
    STAFF = "staff"  # staff at the observation point


#: Inputs that see someone who keeps still; each can say "empty" positively.
PRESENCE_INPUTS = (Input.PRESENCE, Input.CAMERA)
#: Inputs that see someone at all: motion, or a presence that keeps still.
SEEING_INPUTS = (Input.MOTION, *PRESENCE_INPUTS)
#: Episode start reasons that are staff's word, not a sensor's: such an episode is not
#: ended by an empty room until someone has been seen in it (staff start it, then the
#: student comes in), only by staff (the second press, or a command).
STAFF_REASONS = frozenset({"staff", "staff_button", "staff_command"})


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """What the machine needs to know about the room's fit-out and timing."""

    site: str
    room: str
    fitted: frozenset[Input]
    occupancy_hold_s: float = 30.0
    empty_debounce_s: float = 60.0
    rules: WatchRules | None = None  # the profile's limits, checkpoints and monitoring


# ----------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class InputChanged:
    input: Input
    value: bool | None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; lets hold times and debounces expire."""


@dataclass(frozen=True, slots=True)
class StaffButton:
    """The button at the door: starts an episode, or ends the open one."""


@dataclass(frozen=True, slots=True)
class StartEpisode:
    reason: str = "staff"


@dataclass(frozen=True, slots=True)
class EndEpisode:
    reason: str = "staff"


RoomEvent = InputChanged | Tick | StaffButton | StartEpisode | EndEpisode


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class SetPermit:
    """Drive the lock-permit relay (False = the lock cannot hold)."""

    granted: bool


@dataclass(frozen=True, slots=True)
class SetAlarm:
    on: bool


@dataclass(frozen=True, slots=True)
class PublishEvent:
    type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishEpisode:
    event: str  # started | checkpoint | ended
    episode_id: str
    started_at: datetime
    ended_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class SetAttention:
    """Local indication that the episode needs someone: chirp and blink (time up, unwatched)."""

    on: bool


@dataclass(frozen=True, slots=True)
class PublishTelemetry:
    """Something a telemetry message shows has changed: publish one now."""


Action = SetPermit | SetAlarm | SetAttention | PublishEvent | PublishEpisode | PublishTelemetry


# ------------------------------------------------------------------------ state


@dataclass(frozen=True, slots=True)
class OpenEpisode:
    id: str
    started_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class RoomState:
    booted_at: datetime
    inputs: dict[Input, bool | None] = field(default_factory=dict)
    last_presence_at: datetime | None = None
    sealed: bool = False
    sealed_unknown: bool = False
    unknown_since: datetime | None = None
    occupied: bool | None = None
    empty_since: datetime | None = None
    episode: OpenEpisode | None = None
    vacated_at: datetime | None = None  # an end is pending: when the student may have left
    permit: bool = False
    lock_alarm: bool = False
    watch: WatchState = field(default_factory=WatchState)

    def value(self, name: Input) -> bool | None:
        return self.inputs.get(name)

    @property
    def possibly_occupied(self) -> bool:
        return self.occupied is not False

    @property
    def lock_danger(self) -> bool:
        """A lock engaged while someone may be inside: the one thing that must never last."""
        return self.value(Input.DOOR_LOCK) is True and (
            self.possibly_occupied or self.episode is not None
        )


def initial_state(now: datetime, episode: OpenEpisode | None = None) -> RoomState:
    """A freshly booted agent knows nothing: occupancy unknown, permit withdrawn.

    ``episode`` is the one that was open when the agent last stopped (a crash or a
    power cut): it goes on under the same id and ends when the room is empty.
    """
    return RoomState(booted_at=now, episode=episode)


def telemetry_view(state: RoomState) -> tuple[object, ...]:
    """The facts a telemetry message carries; a change in these publishes one."""
    return (
        state.occupied,
        state.value(Input.DOOR_CLOSED),
        state.value(Input.DOOR_LOCK),
        state.value(Input.STAFF),
        state.permit,
        state.episode.id if state.episode else None,
        state.vacated_at,
    )


# ---------------------------------------------------------------------- fusion


def _fuse(state: RoomState, now: datetime, settings: RoomSettings) -> bool | None:
    """Occupied (True), positively empty (False), or unknown (None)."""
    fitted = settings.fitted
    watchers = [p for p in PRESENCE_INPUTS if p in fitted]
    if state.value(Input.MOTION) is True or state.sealed:
        return True
    if any(state.value(p) is True for p in PRESENCE_INPUTS):
        return True
    if state.sealed_unknown:
        return None  # closed before we knew who was inside
    if Input.MOTION not in fitted and not watchers:
        return None  # nothing can see the room: never claim it is empty
    for sensor in (Input.MOTION, *PRESENCE_INPUTS, Input.DOOR_CLOSED):
        if sensor in fitted and state.value(sensor) is None:
            return None  # a sensor we rely on is silent, faulty or blind
    if watchers:
        return False  # every presence sensor (healthy) says no one, motion quiet, not sealed
    hold = timedelta(seconds=settings.occupancy_hold_s)
    if state.last_presence_at is not None and now - state.last_presence_at < hold:
        return True  # within the hold after the last motion
    unknown_since = state.unknown_since or state.booted_at
    if now - unknown_since < hold:
        return None  # just after boot, or just after an unknown room was opened
    return False


def _episode_id(settings: RoomSettings, now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    return f"{settings.site}.{settings.room}.{stamp}"


# ------------------------------------------------------------------------ step


def step(
    state: RoomState, event: RoomEvent, now: datetime, settings: RoomSettings
) -> tuple[RoomState, list[Action]]:
    """Apply ``event`` at ``now``; return the new state and what the shell must do."""
    actions: list[Action] = []
    before = telemetry_view(state)
    state = _apply(state, event, now, settings, actions)
    state = _update_occupancy(state, now, settings, actions)
    state = _interlock(state, actions)
    state = _watch(state, now, settings, actions)
    if telemetry_view(state) != before:
        actions.append(PublishTelemetry())
    return state, actions


def _apply(
    state: RoomState, event: RoomEvent, now: datetime, settings: RoomSettings, actions: list[Action]
) -> RoomState:
    match event:
        case InputChanged(input=name, value=value):
            previous = state.value(name)
            state = replace(state, inputs={**state.inputs, name: value})
            if name in SEEING_INPUTS and value is True:
                # Someone is inside; behind a closed door they stay inside until it opens.
                sealed = state.sealed or state.value(Input.DOOR_CLOSED) is True
                state = replace(state, last_presence_at=now, sealed=sealed)
            elif name in SEEING_INPUTS and previous is True:
                # Seen until this moment: the hold and the exit count from the last sight.
                state = replace(state, last_presence_at=now)
            if name is Input.DOOR_CLOSED:
                if value is False:
                    # The door of a sealed room opens: the hold restarts now, since a still
                    # child may be inside at this very moment (as evidence, or as unknown).
                    if state.sealed and previous is True:
                        state = replace(state, last_presence_at=now)
                    elif state.sealed_unknown:
                        state = replace(state, unknown_since=now)
                    state = replace(state, sealed=False, sealed_unknown=False)
                elif value is True and previous is not True:
                    if state.occupied is True:
                        state = replace(state, sealed=True)
                    elif state.occupied is None:
                        state = replace(state, sealed_unknown=True)
            if (
                name in PRESENCE_INPUTS
                and value is False
                and state.value(Input.MOTION) is not True
                and all(state.value(p) is False for p in PRESENCE_INPUTS if p in settings.fitted)
            ):
                # Presence positively gone: every fitted presence sensor says so.
                state = replace(state, sealed=False, sealed_unknown=False)
        case StaffButton():
            if state.episode is None:
                state = _start_episode(state, now, settings, "staff_button", actions)
            else:
                state = _end_episode(state, state.vacated_at or now, "staff_button", actions)
        case StartEpisode(reason=reason):
            if state.episode is None:
                state = _start_episode(state, now, settings, reason, actions)
        case EndEpisode(reason=reason):
            if state.episode is not None:
                # Staff end it after the student left: the record says when they left.
                state = _end_episode(state, state.vacated_at or now, reason, actions)
        case Tick():
            pass
    return state


def _update_occupancy(
    state: RoomState, now: datetime, settings: RoomSettings, actions: list[Action]
) -> RoomState:
    occupied = _fuse(state, now, settings)
    empty_since = (state.empty_since or now) if occupied is False else None
    rising = occupied is True and state.occupied is not True
    state = replace(state, occupied=occupied, empty_since=empty_since)
    if rising and state.episode is None:
        state = _start_episode(state, now, settings, "occupancy", actions)
    state = replace(state, vacated_at=_exit_candidate(state))
    if (
        state.vacated_at is not None
        and empty_since is not None
        and now - empty_since >= timedelta(seconds=settings.empty_debounce_s)
    ):
        # Confirmed: the episode ended when the student left, not when the debounce ran out.
        state = _end_episode(state, state.vacated_at, "room_empty", actions)
    return state


def _exit_candidate(state: RoomState) -> datetime | None:
    """While an episode is open and no one is seen: the moment the student may have left.

    The last sight of anyone: the fall of the last motion or presence, or the opening of
    the door of a sealed room when nothing moves after it. ``None`` while someone is seen,
    the room is sealed, occupancy is unknown (unknown never holds an alert), or a staff
    episode has had no one in it yet.
    """
    episode = state.episode
    if episode is None or state.occupied is None or state.sealed or state.sealed_unknown:
        return None
    if any(state.value(sensor) is True for sensor in SEEING_INPUTS):
        return None
    seen = state.last_presence_at
    if seen is None or seen < episode.started_at:
        if episode.reason in STAFF_REASONS:
            return None  # staff opened it before anyone came in: it waits for staff
        # Resumed after a restart with no one seen since: the earliest we can vouch for.
        seen = max(state.booted_at, episode.started_at)
    return seen


def _interlock(state: RoomState, actions: list[Action]) -> RoomState:
    if state.lock_danger:
        if not state.lock_alarm:
            actions.append(SetPermit(False))  # at once, whatever we believed before
            actions.append(SetAlarm(True))
            actions.append(
                PublishEvent(
                    "lock_released",
                    {"permit_was": state.permit, "occupied": state.occupied},
                )
            )
            state = replace(state, permit=False, lock_alarm=True)
    elif state.lock_alarm and state.value(Input.DOOR_LOCK) is False:
        # Seen open: the alarm may stop. An unknown lock keeps it sounding.
        actions.append(SetAlarm(False))
        actions.append(PublishEvent("lock_cleared", {}))
        state = replace(state, lock_alarm=False)
    elif state.lock_alarm and not state.lock_danger and state.value(Input.DOOR_LOCK) is True:
        # Still engaged but the room is now positively empty and closed out: silence.
        actions.append(SetAlarm(False))
        state = replace(state, lock_alarm=False)
    permit = state.occupied is False and state.episode is None and not state.lock_alarm
    if permit != state.permit:
        actions.append(SetPermit(permit))
        state = replace(state, permit=permit)
    return state


def _watch(
    state: RoomState, now: datetime, settings: RoomSettings, actions: list[Action]
) -> RoomState:
    """The open episode against the room's policy: facts to publish, and local attention."""
    attention_before = state.watch.needs_attention
    if state.episode is None or settings.rules is None:
        new_watch = WatchState()
    else:
        new_watch, facts = watch(
            state.watch,
            settings.rules,
            state.episode.started_at,
            state.value(Input.STAFF),
            Input.STAFF in settings.fitted,
            now,
            state.vacated_at,
        )
        for fact in facts:
            if fact.checkpoint:
                reason = f"checkpoint {fact.fields['checkpoint']} #{fact.fields['occurrence']}"
                actions.append(
                    PublishEpisode(
                        "checkpoint", state.episode.id, state.episode.started_at, None, reason
                    )
                )
            actions.append(PublishEvent(fact.type, {**fact.fields, "episode_id": state.episode.id}))
    if new_watch.needs_attention != attention_before:
        actions.append(SetAttention(new_watch.needs_attention))
    return replace(state, watch=new_watch)


def _start_episode(
    state: RoomState, now: datetime, settings: RoomSettings, reason: str, actions: list[Action]
) -> RoomState:
    episode = OpenEpisode(_episode_id(settings, now), now, reason)
    actions.append(PublishEpisode("started", episode.id, now, None, reason))
    return replace(state, episode=episode)


def _end_episode(
    state: RoomState, ended_at: datetime, reason: str, actions: list[Action]
) -> RoomState:
    assert state.episode is not None
    episode = state.episode
    ended_at = max(ended_at, episode.started_at)
    actions.append(PublishEpisode("ended", episode.id, episode.started_at, ended_at, reason))
    return replace(state, episode=None, vacated_at=None)
