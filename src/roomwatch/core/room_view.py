"""The collector's view of one room, and every alert condition it shows. Pure.

The collector folds each message into a :class:`RoomView` (:func:`observe`)
and asks :func:`conditions` which alerts must be open, on every message and
on every clock tick. Conditions are levels, not edges: an alert is raised
when its condition starts to hold and resolved when it stops, by the same
:func:`roomwatch.core.rules.reconcile`.

Severity follows DESIGN.md: an agent offline, a fault of a sensor the safety
rules read (core/sensor_roles.py) or staff absence during an open episode is
critical at once; outside an episode, a warning. An environment sensor's fault
is always a warning.

Time and lapse conditions honour the agent's pending end (``vacated_at`` in
telemetry) exactly as the agent's own watch does (core/episode_watch.py): what
falls due at or after the candidate exit is held; each is raised at its due time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from roomwatch.core import wire
from roomwatch.core.alert_types import ROOM_TYPES as ROOM_TYPES  # from the one table
from roomwatch.core.claimed_time import TimeWindow, judge
from roomwatch.core.episode_watch import CheckpointRule, WatchRules
from roomwatch.core.rules import Condition, EnvironmentLimits, telemetry_conditions
from roomwatch.core.sensor_roles import fault_severity
from roomwatch.core.wire import AlertType, Severity

#: No message for this many telemetry intervals: the agent is offline (issue 4).
SILENCE_INTERVALS = 2.5
#: Episode ids remembered as ended, so a late "started" never reopens one.
ENDED_KEPT = 50
#: The longest the collector holds time and lapse alerts for a pending end: the agent's
#: occupancy hold and empty debounce (90 s by default) with room to spare. An agent whose
#: end stays pending longer (a longer configured debounce, a stuck agent) has its held
#: alerts raised here, at their due times: a hold is never open-ended.
END_HOLD_MAX_S = 180.0


@dataclass(frozen=True, slots=True)
class RoomView:
    site: str
    room: str
    telemetry: wire.Telemetry | None = None
    online: bool | None = None
    offline_since: datetime | None = None  # a last will, or a clean offline status
    last_heard: datetime | None = None  # when the collector last received anything
    episode_id: str | None = None
    episode_started: datetime | None = None
    ended: tuple[str, ...] = ()
    staff_away_since: datetime | None = None
    faults: dict[str, str] = field(default_factory=dict)
    # How far the agent's last sequenced message claimed a time outside the window (None:
    # inside it); the collector raises clock_skew while it is set (core/claimed_time.py).
    clock_skew_s: float | None = None
    # The agent came online with an empty outbox record (acked_seq -1: a new device, a wiped
    # state folder) while we hold a reading of a higher number: it numbers afresh, so its
    # next reading is taken whatever its number (and whatever its clock says).
    renumbered: bool = False


def _newer_reading(message: wire.Telemetry, current: wire.Telemetry, trusted: bool) -> bool:
    """Whether ``message`` supersedes ``current``: by the agent's sequence, never by the time
    it claims. A number that goes back is an older reading replayed, unless the agent
    started numbering afresh (a new outbox) or the current number was forged: as
    collector/service.py's sequence tracking follows a restart, the view follows a lower
    number whose own time is trusted and after the current reading's (judged) time; a
    replayed reading happened before it."""
    if message.seq > current.seq:
        return True
    return trusted and message.ts > current.ts


def _not_after(message: wire.Message, received_at: datetime) -> wire.Message:
    """``message`` with every time it claims after its own arrival moved back to it.

    A time a little ahead of the collector's clock is inside the window (believed, and
    stored as it came), but the live rules count from it: a clock 110 s ahead would delay
    every lapse and time limit by 110 s, and a reading claiming a time ahead would outrank
    the agent's next ones until then. Nothing happens after it arrives: for the rules, it
    happened then at the latest."""
    names = ["ts"]
    if isinstance(message, wire.Episode):
        names += ["started_at", "ended_at"]
    elif isinstance(message, wire.Telemetry):
        names.append("vacated_at")
    late = {
        name: received_at
        for name in names
        if (value := getattr(message, name)) is not None and value > received_at
    }
    return message.model_copy(update=late) if late else message


def _observe_reading(view: RoomView, message: wire.Telemetry, trusted: bool) -> RoomView:
    view = replace(view, online=True, offline_since=None)
    if (
        view.telemetry is not None
        and not view.renumbered
        and not _newer_reading(message, view.telemetry, trusted)
    ):
        return view  # an older reading replayed after a newer one: keep the newer
    view = replace(view, renumbered=False)
    # staff_present null means no staff sensor is fitted (GPIO inputs never read
    # "unknown"): nothing to judge, so no lapse is inferred from it.
    away = view.staff_away_since
    if message.staff_present is not False:
        away = None
    elif away is None:
        away = message.ts
    view = replace(view, telemetry=message, staff_away_since=away)
    if message.episode_id and message.episode_id not in view.ended and not view.episode_id:
        # Telemetry names an episode whose start we missed: follow it from here.
        view = replace(view, episode_id=message.episode_id, episode_started=message.ts)
    return view


def observe(
    view: RoomView,
    message: wire.Message,
    received_at: datetime,
    window: TimeWindow | None = None,
) -> RoomView:
    """Fold one message into the view. With a ``window``, a message claiming a time outside
    it is judged as if it happened when it arrived, and the view records the skew."""
    view = replace(view, last_heard=received_at)
    judged = judge(message, received_at, window)
    message = _not_after(judged.message, received_at) if window is not None else judged.message
    if message.sequenced and view.clock_skew_s != judged.skew_s:
        view = replace(view, clock_skew_s=judged.skew_s)
    match message:
        case wire.Status(state="offline"):
            return replace(view, online=False, offline_since=received_at)
        case wire.Status():
            afresh = (
                message.acked_seq == -1
                and view.telemetry is not None
                and view.telemetry.seq > message.acked_seq
            )
            return replace(view, online=True, offline_since=None, renumbered=afresh)
        case wire.Telemetry():
            return _observe_reading(view, message, trusted=judged.skew_s is None)
        case wire.Episode(event=wire.EpisodeEvent.STARTED):
            if message.episode_id in view.ended:
                return view
            return replace(view, episode_id=message.episode_id, episode_started=message.started_at)
        case wire.Episode(event=wire.EpisodeEvent.ENDED):
            ended = (*view.ended[-(ENDED_KEPT - 1) :], message.episode_id)
            if view.episode_id == message.episode_id:
                view = replace(view, episode_id=None, episode_started=None)
            return replace(view, ended=ended)
        case wire.Event(type="sensor_fault"):
            sensor = str(message.fields.get("sensor", "unknown"))
            fault = str(message.fields.get("fault", "fault"))
            return replace(view, faults={**view.faults, sensor: fault})
        case wire.Event(type="sensor_ok"):
            sensor = str(message.fields.get("sensor", "unknown"))
            return replace(view, faults={k: v for k, v in view.faults.items() if k != sensor})
    return view


def conditions(
    view: RoomView,
    limits: EnvironmentLimits,
    rules: WatchRules,
    now: datetime,
    telemetry_interval_s: float,
    raised: frozenset[tuple[AlertType, str | None]] = frozenset(),
) -> list[Condition]:
    """Every condition in :data:`ROOM_TYPES` that holds for the room at ``now``.

    ``raised``: the (type, subject) of the alerts already open for the room's episode. A
    pending end holds what has not been raised; it never withdraws what has (the agent keeps
    it too): only the confirmed end, or the condition itself clearing, resolves it."""
    found: list[Condition] = []
    episode = view.episode_id
    if view.telemetry is not None:
        # The last known state stands while the agent is offline: going silent must never
        # resolve a critical alert such as a locked door.
        found += [
            c
            for c in telemetry_conditions(view.telemetry, limits)
            if c.type is not AlertType.SECLUSION_PROHIBITED or _unwatched(view, rules, now)
        ]
    found += _offline(view, now, telemetry_interval_s, episode)
    found += _faults(view, episode)
    if episode is not None and view.episode_started is not None:
        vacated = _pending_end(view, now, telemetry_interval_s)
        timed = _time(rules, episode, view.episode_started, now, vacated)
        timed += _watched(view, rules, episode, now, vacated)
        if vacated is not None and raised:
            timed = _kept(timed, view, rules, episode, view.episode_started, now, raised)
        found += timed
    return found


def _kept(
    held: list[Condition],
    view: RoomView,
    rules: WatchRules,
    episode: str,
    started: datetime,
    now: datetime,
    raised: frozenset[tuple[AlertType, str | None]],
) -> list[Condition]:
    """``held`` plus every time and lapse condition the hold would withdraw although its
    alert is already raised (an agent heard again after a silence, with an end pending)."""
    unheld = _time(rules, episode, started, now, None)
    unheld += _watched(view, rules, episode, now, None)
    have = {(c.type, c.subject) for c in held}
    kept = held + [
        c for c in unheld if (c.type, c.subject) in raised and (c.type, c.subject) not in have
    ]
    if any(c.type is AlertType.TIME_LIMIT_EXCEEDED for c in kept):
        # The limit stays passed: its warning, resolved when the limit was, does not return.
        kept = [c for c in kept if c.type is not AlertType.TIME_LIMIT_WARNING]
    return kept


def _unwatched(view: RoomView, rules: WatchRules, now: datetime) -> bool:
    """Staff have been away longer than the profile's lapse: a closed door is then seclusion.

    A glance away of a few seconds is not leaving the student alone: staff are still
    "immediately available" (603 CMR 46.02 in seed 003, Massachusetts), the same grace
    ``monitoring_lapse`` gives."""
    since = _away_in_episode(view)
    return since is not None and (now - since).total_seconds() > rules.lapse_after_s


def _away_in_episode(view: RoomView) -> datetime | None:
    """Since when staff have been away, counted from the episode's start at the earliest:
    absence before the episode began is no lapse in it (the agent counts the same way)."""
    if view.staff_away_since is None:
        return None
    return max(view.staff_away_since, view.episode_started or view.staff_away_since)


def _pending_end(view: RoomView, now: datetime, interval_s: float) -> datetime | None:
    """The candidate exit the agent reports, while the collector may trust it: not from an
    agent that is offline or silent (its room may have changed since), and not past the
    bound."""
    vacated = view.telemetry.vacated_at if view.telemetry is not None else None
    if vacated is None or _offline(view, now, interval_s, None):
        return None
    if (now - vacated).total_seconds() > END_HOLD_MAX_S:
        return None
    return vacated


def _severity(episode: str | None) -> Severity:
    return Severity.CRITICAL if episode is not None else Severity.WARNING


def _offline(
    view: RoomView, now: datetime, interval_s: float, episode: str | None
) -> list[Condition]:
    if view.offline_since is not None:
        why = "The room's agent is offline (it said so, or its last will did)."
    elif view.last_heard is not None and now - view.last_heard > timedelta(
        seconds=SILENCE_INTERVALS * interval_s
    ):
        silent = (now - view.last_heard).total_seconds()
        why = f"Nothing heard from the room's agent for {silent:.0f} s."
    else:
        return []
    if episode is not None:
        why += " An episode is open: go to the room."
    return [Condition(AlertType.AGENT_OFFLINE, _severity(episode), why, episode)]


def _faults(view: RoomView, episode: str | None) -> list[Condition]:
    # Severity by what the fault blinds (core/sensor_roles.py), not by the episode alone.
    found = []
    for sensor, fault in sorted(view.faults.items()):
        severity = fault_severity(sensor, episode is not None)
        why = f"Sensor fault: {fault}"
        if severity is Severity.CRITICAL:
            why += " An episode is open and the safety rules cannot see: watch the room in person."
        found.append(Condition(AlertType.SENSOR_FAULT, severity, why, episode, sensor))
    return found


def _time(
    rules: WatchRules,
    episode: str,
    started: datetime,
    now: datetime,
    vacated: datetime | None,
) -> list[Condition]:
    # While an end is pending, only what fell due before the candidate exit holds.
    horizon = now if vacated is None else min(now, vacated)
    elapsed_s = (horizon - started).total_seconds()
    strict = vacated is not None

    def due(at_s: float) -> bool:
        return elapsed_s > at_s if strict else elapsed_s >= at_s

    def at(seconds: float) -> datetime:
        return started + timedelta(seconds=seconds)

    found = []
    if rules.limit_s is not None and due(rules.limit_s):
        minutes = rules.limit_s / 60
        found.append(
            Condition(
                AlertType.TIME_LIMIT_EXCEEDED,
                Severity.CRITICAL,
                f"The episode has passed its {minutes:g}-minute limit: "
                "end it or take the next step.",
                episode,
                due_at=at(rules.limit_s),
            )
        )
    elif rules.warning_s is not None and due(rules.warning_s):
        left = ((rules.limit_s or 0) - rules.warning_s) / 60
        found.append(
            Condition(
                AlertType.TIME_LIMIT_WARNING,
                Severity.WARNING,
                f"The episode reaches its {(rules.limit_s or 0) / 60:g}-minute limit "
                f"{left:g} min after this warning.",
                episode,
                due_at=at(rules.warning_s),
            )
        )
    for checkpoint in rules.checkpoints:
        found += _checkpoints(checkpoint, episode, started, elapsed_s, strict)
    return found


def _checkpoints(
    checkpoint: CheckpointRule, episode: str, started: datetime, elapsed_s: float, strict: bool
) -> list[Condition]:
    found = []
    for n in range(checkpoint.occurrences_until(elapsed_s, strict)):
        at_s = checkpoint.at_s(n)
        found.append(
            Condition(
                AlertType.CHECKPOINT_DUE,
                Severity.WARNING,
                f"At {at_s / 60:g} min: {checkpoint.action}",
                episode,
                f"{checkpoint.id}#{n + 1}",
                due_at=started + timedelta(seconds=at_s),
            )
        )
    return found


def _watched(
    view: RoomView, rules: WatchRules, episode: str, now: datetime, vacated: datetime | None
) -> list[Condition]:
    since = _away_in_episode(view)
    if not rules.monitoring or view.telemetry is None or since is None:
        return []
    lapse_at = since + timedelta(seconds=rules.lapse_after_s)
    if now <= lapse_at or (vacated is not None and lapse_at >= vacated):
        return []  # not yet; or due after the student may have left: held (staff left too)
    return [
        Condition(
            AlertType.MONITORING_LAPSE,
            Severity.CRITICAL,
            "No one watching: staff away from the observation point for more than "
            f"{rules.lapse_after_s:g} s.",
            episode,
            due_at=lapse_at,
        )
    ]
