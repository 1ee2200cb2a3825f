"""The database: engine set-up (SQLite in WAL mode, or PostgreSQL), migrations, writes."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Engine,
    Table,
    case,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.config import RoomRegistration
from roomwatch.collector.database import as_utc
from roomwatch.collector.dead_letters import DeadRecord, shrink
from roomwatch.collector.models import (
    USER_ROLES,
    AgentProgress,
    AgentRecord,
    AlertRecord,
    AlertTransition,
    AppUser,
    DeadLetter,
    DeliveryAttempt,
    EpisodeRecord,
    EventRecord,
    RoomRecord,
    SiteRecord,
    StoredMessage,
    TelemetryRecord,
)
from roomwatch.collector.quarantine import Quarantine, raw, read_int, read_json_text, read_time
from roomwatch.core import rules, wire
from roomwatch.core.claimed_time import Judged, TimeWindow, judge
from roomwatch.core.policy import StudentBand

log = logging.getLogger(__name__)


def _insert(engine: Engine, table: Any) -> Any:
    """The dialect's own INSERT, the one that has ON CONFLICT (both spell it alike)."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise RuntimeError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def _insert_ignore(engine: Engine, table: Any) -> Any:
    return _insert(engine, table).on_conflict_do_nothing()


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _earlier(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """The earlier of two non-null times (portable: SQLite's min() and PostgreSQL's least()
    treat NULL differently, so neither is used)."""
    return case((b < a, b), else_=a)


def _later(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((b > a, b), else_=a)


class _Json(str):
    """A JSON document already encoded (goes into a JSON column as it is)."""


_DATETIME, _JSON, _PLAIN = 1, 2, 0


def _sqlite_kind(column: Any) -> int:
    if isinstance(column.type, DateTime):
        return _DATETIME
    if isinstance(column.type, JSON):
        return _JSON
    return _PLAIN


def _sqlite_value(kind: int, value: Any) -> Any:
    """``value`` as SQLAlchemy's SQLite dialect stores it: DATETIME as naive ISO text with
    microseconds (our times are all UTC), JSON as ``json.dumps`` text; bools, numbers and
    text as they are (sqlite3 binds a bool as 0 or 1)."""
    if value is None or kind == _PLAIN:
        return value
    if kind == _DATETIME:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value if isinstance(value, _Json) else json.dumps(value)


#: Ids per ``IN (...)`` when looking up which of a batch's messages are stored already
#: (below SQLite's oldest limit of 999 bound variables).
_SQLITE_IDS_PER_SELECT = 900


class UserExistsError(ValueError):
    """A user with that id or username is already stored."""


# ------------------------------------------------------------------------ derived rows


@dataclass(slots=True)
class _Derived:
    """What one batch's new messages say about sites, rooms, agents, episodes, telemetry and
    events, folded per key so each key is written once per statement (PostgreSQL refuses an
    ON CONFLICT DO UPDATE that meets the same row twice)."""

    sites: set[str]
    rooms: dict[tuple[str, str], dict[str, Any]]
    agents: dict[tuple[str, str], dict[str, Any]]
    episodes: dict[str, dict[str, Any]]
    telemetry: list[dict[str, Any]]
    events: list[dict[str, Any]]


def status_time(message: wire.Status, received_at: datetime) -> datetime:
    """When a status became true, the order in which statuses replace each other.

    An online status (and any other) counts from its own ``ts``. An offline one may be the
    last will, which the agent composed when its connection began and the broker published
    only when the agent vanished: its ``ts`` is stale, so it counts from when it arrived
    (docs/wire-protocol.md), or its ``ts`` if that is later (a clean stop, a fast clock)."""
    if message.state == "offline":
        return max(message.ts, received_at)
    return message.ts


def _newer_status(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    """The same order as the upsert's SQL: later status time wins; on a tie, offline wins."""
    if current.get("last_status_at") is None:
        return True
    if candidate["last_status_at"] != current["last_status_at"]:
        return bool(candidate["last_status_at"] > current["last_status_at"])
    return bool(candidate["state"] == "offline" and current["state"] != "offline")


_STATUS_COLUMNS = (
    "state",
    "agent_version",
    "config_digest",
    "profile",
    "acked_seq",
    "last_status_at",
)
_AGENT_KINDS = frozenset(wire.AGENT_KINDS)


def _derive(received: Sequence[tuple[wire.Message, datetime]], new_ids: set[str]) -> _Derived:
    d = _Derived(set(), {}, {}, {}, [], [])
    pending = set(new_ids)
    for m, received_at in received:
        if m.id not in pending:
            continue  # stored before (a redelivery), or a repeat within this batch
        pending.discard(m.id)
        received_at = as_utc(received_at)
        key = (m.site, m.room)
        d.sites.add(m.site)
        room = d.rooms.get(key)
        if room is None:
            d.rooms[key] = {"site": m.site, "room": m.room, "first_seen": m.ts, "last_seen": m.ts}
        else:
            room["first_seen"] = min(room["first_seen"], m.ts)
            room["last_seen"] = max(room["last_seen"], m.ts)
        if m.kind in _AGENT_KINDS:
            _fold_agent(d, m, received_at)
        if isinstance(m, wire.Telemetry):
            d.telemetry.append(
                {
                    "message_id": m.id,
                    "site": m.site,
                    "room": m.room,
                    "ts": m.ts,
                    "temperature_c": m.temperature_c,
                    "lux": m.lux,
                    "co2_ppm": m.co2_ppm,
                    "occupied": m.occupied,
                    "door_closed": m.door_closed,
                    "door_locked": m.door_locked,
                    "staff_present": m.staff_present,
                    "lock_permit": m.lock_permit,
                    "episode_id": m.episode_id,
                }
            )
        elif isinstance(m, wire.Event):
            fields = m.fields
            episode_id = fields.get("episode_id")
            d.events.append(
                {
                    "message_id": m.id,
                    "site": m.site,
                    "room": m.room,
                    "ts": m.ts,
                    "type": m.type,
                    "episode_id": episode_id[:160] if isinstance(episode_id, str) else None,
                    "fields": fields,
                }
            )
        elif isinstance(m, wire.Episode):
            _fold_episode(d, m)
    return d


def _fold_agent(d: _Derived, m: wire.Message, received_at: datetime) -> None:
    key = (m.site, m.room)
    agent = d.agents.get(key)
    if agent is None:
        agent = d.agents[key] = {"site": m.site, "room": m.room, "last_heard_at": received_at}
        agent.update(dict.fromkeys(_STATUS_COLUMNS))
    else:
        agent["last_heard_at"] = max(agent["last_heard_at"], received_at)
    if isinstance(m, wire.Status):
        status = {
            "state": m.state,
            "agent_version": m.agent_version,
            "config_digest": m.config_digest,
            "profile": m.profile,
            "acked_seq": m.acked_seq,
            "last_status_at": status_time(m, received_at),
        }
        if _newer_status(status, agent):
            agent.update(status)


def _fold_episode(d: _Derived, m: wire.Episode) -> None:
    episode = d.episodes.get(m.episode_id)
    if episode is None:
        episode = d.episodes[m.episode_id] = {
            "episode_id": m.episode_id,
            "site": m.site,
            "room": m.room,
            "started_at": m.started_at,
            "ended_at": None,
            "start_reason": None,
            "end_reason": None,
            "checkpoint_count": 0,
        }
    else:
        episode["started_at"] = min(episode["started_at"], m.started_at)
    if m.event is wire.EpisodeEvent.STARTED:
        if episode["start_reason"] is None:
            episode["start_reason"] = m.reason
    elif m.event is wire.EpisodeEvent.ENDED:
        ended_at = m.ended_at or m.ts
        if episode["ended_at"] is None or ended_at < episode["ended_at"]:
            episode["ended_at"] = ended_at
            episode["end_reason"] = m.reason
    else:
        episode["checkpoint_count"] += 1


def audit_changes(
    transitions: Sequence[rules.Transition], attempts: Sequence[DeliveryAttempt]
) -> list[tuple[audit.Change, datetime]]:
    """The audit entries a batch owes (issue 7): every acknowledgement, by whom, and every
    notification attempt (the channel is already redacted)."""
    changes = []
    for t in transitions:
        if t.state is wire.AlertState.ACKNOWLEDGED:
            a = t.alert
            detail: dict[str, object] = {"type": a.type.value, "site": a.site, "room": a.room}
            detail |= {"tier": a.tier, "episode_id": a.episode_id}
            who = t.by or a.acknowledged_by or "unknown"
            changes.append(
                (audit.Change(who, "alert.acknowledged", f"alert:{a.alert_id}", detail), t.at)
            )
    for n in attempts:
        detail = {"state": n.state, "tier": n.tier, "channel": n.channel, "attempt": n.attempt}
        detail |= {"error": n.error}
        action = "notification.sent" if n.ok else "notification.failed"
        changes.append((audit.Change("system", action, f"alert:{n.alert_id}", detail), n.at))
    return changes


class Store:
    """Everything the collector writes and reads back at start."""

    def __init__(
        self,
        engine: Engine,
        quarantine: Quarantine | None = None,
        window: TimeWindow | None = None,
    ) -> None:
        self.engine = engine
        #: The collector's window for claimed times (None: believe every time).
        self.window = window
        #: Rows read back that could not be used (the collector's metrics show the counts).
        self.quarantine = quarantine or Quarantine()

    # ------------------------------------------------------------- writing

    def write_batch(
        self,
        received: Iterable[tuple[wire.Message, datetime]],
        transitions: Iterable[rules.Transition] = (),
        dead: Iterable[tuple[wire.Invalid | DeadRecord, datetime]] = (),
        attempts: Iterable[DeliveryAttempt] = (),
    ) -> set[str]:
        """One transaction: alert steps, messages, what the new messages say about sites,
        rooms, agents, episodes, telemetry and events (docs/storage.md), dead letters and
        delivery attempts. Returns the new message ids.

        All or nothing, so a batch retried after a failure is never half written twice; and
        only messages not stored before feed the derived tables, so a redelivered message
        changes nothing.
        """
        received = list(received)
        # Each message as the collector judges it (claimed times outside the window replaced
        # by arrival): the message row keeps the body as it came, with the skew flagged; the
        # derived rows (reports, the board's history) hold the judged times.
        judged = [judge(m, as_utc(at), self.window) for m, at in received]
        transitions, attempts = list(transitions), list(attempts)
        changes = audit_changes(transitions, attempts)
        # One appender at a time in this process (the audit trail's own lock), only when
        # there is something to append: acknowledgements and notifications are rare.
        with audit.append_lock if changes else nullcontext(), Session(self.engine) as session:
            self._transitions(session, transitions, None)
            new_ids = self._messages(session, received, judged)
            if new_ids:
                as_judged = [(j.message, at) for j, (_, at) in zip(judged, received, strict=True)]
                self._derived(session, _derive(as_judged, new_ids))
            for item, received_at in dead:
                record = item if isinstance(item, DeadRecord) else shrink(item)
                session.add(
                    DeadLetter(
                        received_at=received_at,
                        topic=record.topic,
                        payload=record.prefix,
                        reason=record.reason,
                        field_path=record.field,
                        payload_size=record.size,
                        payload_sha256=record.sha256,
                        source=record.source,
                    )
                )
            session.add_all(attempts)
            for change, at in changes:
                audit.append(session, change, at)  # atomic with the rows it describes
            session.commit()
        return new_ids

    def save_messages(self, received: Iterable[tuple[wire.Message, datetime]]) -> set[str]:
        """Store each message once; returns the ids that were new (not stored before)."""
        return self.write_batch(received)

    def save_transitions(
        self, transitions: Iterable[rules.Transition], by: str | None = None
    ) -> None:
        transitions = list(transitions)
        changes = audit_changes(transitions, [])
        with audit.append_lock if changes else nullcontext(), Session(self.engine) as session:
            self._transitions(session, transitions, by)
            for change, at in changes:
                audit.append(session, change, at)
            session.commit()

    def dead_letter_counts(self) -> dict[str | None, int]:
        """Dead letters stored per source room (for the caps, at start)."""
        table = _table(DeadLetter)
        with self.engine.connect() as connection:
            rows = connection.execute(select(table.c.source, func.count()).group_by(table.c.source))
            return {source: int(n) for source, n in rows}

    def save_dead_letter(self, invalid: wire.Invalid, received_at: datetime) -> None:
        self.write_batch((), (), [(invalid, received_at)])

    def _messages(
        self,
        session: Session,
        received: Sequence[tuple[wire.Message, datetime]],
        judged: Sequence[Judged],
    ) -> set[str]:
        sqlite = self.engine.dialect.name == "sqlite"
        rows = [
            {
                "id": m.id,
                "site": m.site,
                "room": m.room,
                "kind": m.kind.value,
                "seq": getattr(m, "seq", None),
                "ts": m.ts,
                "received_at": as_utc(received_at),
                # SQLite takes the JSON text as pydantic writes it (the same document).
                "body": _Json(m.model_dump_json()) if sqlite else m.model_dump(mode="json"),
                "clock_skew_s": j.skew_s,
            }
            for (m, received_at), j in zip(received, judged, strict=True)
        ]
        if not rows:
            return set()
        table = StoredMessage.__table__  # type: ignore[attr-defined]
        if not sqlite:
            statement = _insert_ignore(self.engine, table).returning(table.c.id)
            return {row[0] for row in session.execute(statement, rows)}
        # SQLite: INSERT ... RETURNING of many rows is one huge statement, rendered and parsed
        # for every batch; looking up which ids are stored and inserting the others with one
        # executemany is several times cheaper. A plain INSERT, not OR IGNORE: should another
        # writer store one of these ids in between, the batch fails and is retried whole,
        # rather than feeding the derived tables twice.
        ids = [str(row["id"]) for row in rows]
        stored: set[str] = set()
        for start in range(0, len(ids), _SQLITE_IDS_PER_SELECT):
            chunk = ids[start : start + _SQLITE_IDS_PER_SELECT]
            stored.update(
                session.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars()
            )
        new_rows: list[dict[str, Any]] = []
        for row, message_id in zip(rows, ids, strict=True):
            if message_id not in stored:
                stored.add(message_id)  # a repeat within the batch is stored once
                new_rows.append(row)
        self._bulk_insert(session, table, new_rows, ignore=False)
        return {str(row["id"]) for row in new_rows}

    def _bulk_insert(
        self, session: Session, table: Table, rows: list[dict[str, Any]], ignore: bool
    ) -> None:
        """Insert many rows in one executemany (``ignore``: skip those whose key is stored).

        On SQLite the rows go to the driver as tuples, converted as SQLAlchemy's own SQLite
        types would store them (:func:`_sqlite_value`): its per-row parameter building and
        bind processing cost more than the insert itself. PostgreSQL goes through Core."""
        if not rows:
            return
        if self.engine.dialect.name != "sqlite":
            statement = (
                _insert_ignore(self.engine, table) if ignore else _insert(self.engine, table)
            )
            session.execute(statement, rows)
            return
        sql, plan = self._sqlite_insert(table, tuple(rows[0]), ignore)
        session.connection().exec_driver_sql(
            sql, [tuple(_sqlite_value(kind, row[name]) for kind, name in plan) for row in rows]
        )

    @functools.lru_cache(maxsize=32)  # noqa: B019 - a handful of tables, for the store's life
    def _sqlite_insert(
        self, table: Table, keys: tuple[str, ...], ignore: bool
    ) -> tuple[str, list[tuple[int, str]]]:
        """The dialect's INSERT for these columns, and its positional parameters: how to
        convert each, and its name."""
        statement = _insert_ignore(self.engine, table) if ignore else _insert(self.engine, table)
        compiled = statement.compile(dialect=self.engine.dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ())
        return compiled.string, [(_sqlite_kind(table.c[n]), n) for n in names]

    def _derived(self, session: Session, d: _Derived) -> None:
        """Sites, rooms, agents and episodes by upsert (in key order, so that collectors
        sharing one PostgreSQL take row locks in the same order); telemetry and events by one
        bulk insert each."""
        site = _table(SiteRecord)
        session.execute(_insert_ignore(self.engine, site), [{"id": s} for s in sorted(d.sites)])

        room = _table(RoomRecord)
        insert = _insert(self.engine, room)
        new = insert.excluded
        session.execute(
            insert.on_conflict_do_update(
                index_elements=[room.c.site, room.c.room],
                set_={
                    "first_seen": _earlier(room.c.first_seen, new.first_seen),
                    "last_seen": _later(room.c.last_seen, new.last_seen),
                },
            ),
            [d.rooms[k] for k in sorted(d.rooms)],
        )

        if d.agents:
            agent = _table(AgentRecord)
            insert = _insert(self.engine, agent)
            new = insert.excluded
            newer = new.last_status_at.is_not(None) & (
                agent.c.last_status_at.is_(None)
                | (new.last_status_at > agent.c.last_status_at)
                | (
                    (new.last_status_at == agent.c.last_status_at)
                    & (new.state == "offline")
                    & (agent.c.state != "offline")
                )
            )
            status = {c: case((newer, new[c]), else_=agent.c[c]) for c in _STATUS_COLUMNS}
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[agent.c.site, agent.c.room],
                    set_={
                        **status,
                        "last_heard_at": _later(agent.c.last_heard_at, new.last_heard_at),
                    },
                ),
                [d.agents[k] for k in sorted(d.agents)],
            )

        if d.episodes:
            episode = _table(EpisodeRecord)
            insert = _insert(self.engine, episode)
            new = insert.excluded
            first_end = new.ended_at.is_not(None) & (
                episode.c.ended_at.is_(None) | (new.ended_at < episode.c.ended_at)
            )
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[episode.c.episode_id],
                    set_={
                        "started_at": _earlier(episode.c.started_at, new.started_at),
                        # The first end stands; a late "started" leaves it alone.
                        "ended_at": case((first_end, new.ended_at), else_=episode.c.ended_at),
                        "end_reason": case((first_end, new.end_reason), else_=episode.c.end_reason),
                        "start_reason": func.coalesce(episode.c.start_reason, new.start_reason),
                        "checkpoint_count": episode.c.checkpoint_count + new.checkpoint_count,
                    },
                ),
                [d.episodes[k] for k in sorted(d.episodes)],
            )

        self._bulk_insert(session, _table(TelemetryRecord), d.telemetry, ignore=True)
        self._bulk_insert(session, _table(EventRecord), d.events, ignore=True)

    def _transitions(
        self, session: Session, transitions: Iterable[rules.Transition], by: str | None
    ) -> None:
        for t in transitions:
            a = t.alert
            record = session.get(AlertRecord, a.alert_id)
            if record is None:
                record = AlertRecord(
                    alert_id=a.alert_id,
                    site=a.site,
                    room=a.room,
                    type=a.type.value,
                    severity=a.severity.value,
                    state=t.state.value,
                    episode_id=a.episode_id,
                    raised_at=a.raised_at,
                    updated_at=t.at,
                    message=a.message,
                    late=a.late,
                    subject=a.subject,
                )
            else:
                record.state = t.state.value
                record.updated_at = t.at
            record.tier = a.tier
            record.notified_at = a.notified_at
            record.acknowledged_by = a.acknowledged_by
            session.add(record)
            session.flush()
            session.add(
                AlertTransition(alert_id=a.alert_id, state=t.state.value, at=t.at, by=t.by or by)
            )

    def save_progress(self, progress: dict[tuple[str, str], int], at: datetime) -> None:
        """Each agent's stored-up-to mark: one upsert statement for all of them (in key order,
        like the derived rows), not a read and a write per agent."""
        if not progress:
            return
        table = _table(AgentProgress)
        insert = _insert(self.engine, table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.site, table.c.room],
            set_={"acked_seq": insert.excluded.acked_seq, "updated_at": insert.excluded.updated_at},
        )
        rows = [
            {"site": site, "room": room, "acked_seq": seq, "updated_at": at}
            for (site, room), seq in sorted(progress.items())
        ]
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

    def add_user(
        self,
        username: str,
        display_name: str,
        role: str,
        password_hash: str | None = None,
        *,
        user_id: str | None = None,
        created_at: datetime | None = None,
        disabled: bool = False,
    ) -> AppUser:
        """Store a new web-app user (``password_hash`` as the caller made it: nothing is hashed
        here). The id defaults to a random one; :class:`UserExistsError` if the id or username is
        taken, ValueError for a role not in staff, admin, auditor."""
        if role not in USER_ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(USER_ROLES)}")
        user_id = user_id or uuid.uuid4().hex
        user = AppUser(
            id=user_id,
            username=username,
            display_name=display_name,
            role=role,
            password_hash=password_hash,
            created_at=as_utc(created_at or datetime.now(UTC)),
            disabled=disabled,
        )
        with Session(self.engine) as session:
            session.add(user)
            try:
                session.commit()
            except IntegrityError as exc:
                raise UserExistsError(
                    f"a user with id {user_id!r} or username {username!r} exists"
                ) from exc
        found = self.get_user(user_id)
        assert found is not None
        return found

    def get_user(
        self, user_id: str | None = None, *, username: str | None = None
    ) -> AppUser | None:
        """The user with that id (or, given ``username=``, that username), or None."""
        if (user_id is None) == (username is None):
            raise TypeError("get_user takes a user id or a username, not both or neither")
        with Session(self.engine, expire_on_commit=False) as session:
            if user_id is not None:
                user = session.get(AppUser, user_id)
            else:
                user = session.execute(
                    select(AppUser).where(AppUser.username == username)  # type: ignore[arg-type]
                ).scalar_one_or_none()
            if user is None:
                return None
            session.expunge(user)
        user.created_at = as_utc(user.created_at)
        return user

    def register_room(
        self, site: str, room: str, settings: RoomRegistration, by: str, at: datetime
    ) -> None:
        """Set a room's profile and student band (creating its row if its agent has not been
        heard yet), with an audit entry of the change, in one transaction."""

        def work(session: Session) -> list[audit.Change]:
            session.execute(_insert_ignore(self.engine, _table(SiteRecord)), [{"id": site}])
            record = session.get(RoomRecord, (site, room))
            before = (
                {"profile": record.profile, "student_band": record.student_band} if record else None
            )
            if record is None:
                record = RoomRecord(site=site, room=room, first_seen=at, last_seen=at)
            record.profile = settings.profile
            record.student_band = settings.student_band.value if settings.student_band else None
            session.add(record)
            session.flush()
            after = {"profile": record.profile, "student_band": record.student_band}
            return [
                audit.Change(
                    by, "room.registered", f"room:{site}/{room}", {"before": before, "after": after}
                )
            ]

        audit.in_transaction(self.engine, work, lambda changes: changes, lambda: at)

    def registered_rooms(self) -> dict[tuple[str, str], RoomRegistration]:
        """Rooms an administrator gave a profile or student band to."""
        table = _table(RoomRecord)
        found: dict[tuple[str, str], RoomRegistration] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.site, table.c.room, table.c.profile, table.c.student_band).where(
                    table.c.profile.is_not(None) | table.c.student_band.is_not(None)
                )
            )
            for site, room, profile, band in rows:
                try:
                    found[(site, room)] = RoomRegistration(
                        profile=profile, student_band=StudentBand(band) if band else None
                    )
                except ValueError as exc:  # a profile removed since: say so, keep going
                    self.quarantine.add("room", f"{site}/{room}", f"stored settings ignored: {exc}")
        return found

    # ------------------------------------------------------------- reading

    def load_progress(self) -> dict[tuple[str, str], int]:
        table = _table(AgentProgress)
        found: dict[tuple[str, str], int] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(select(table.c.site, table.c.room, raw(table.c.acked_seq)))
            for site, room, acked_seq in rows:
                try:
                    seq = read_int(acked_seq)
                    if seq < -1:
                        raise ValueError(f"acked_seq {seq} is below -1")
                except ValueError as exc:
                    # Unknown progress is safe: the agent's status says what it still holds.
                    self.quarantine.add("agent_progress", f"{site}/{room}", exc)
                    continue
                found[(site, room)] = seq
        return found

    #: The status and telemetry rows per room read at start, newest first, page by page: the
    #: room view picks the newest by sequence (as it does live) from the first page; a room
    #: whose page held no readable row reads the next, so junk cannot hide its last state.
    LAST_ROWS_PAGES = ((1, 5), (6, 50), (51, 500))

    def recent_room_facts(self, since: datetime) -> list[tuple[wire.Message, datetime]]:
        """What a restarted collector needs to rebuild each room's view, in arrival order:
        each room's last few statuses and telemetry readings, and its episode and
        sensor-fault messages received since ``since``. A row that cannot be read is
        quarantined (:mod:`roomwatch.collector.quarantine`), never fatal."""
        table = _table(StoredMessage)
        sqlite = self.engine.dialect.name == "sqlite"
        newest = (
            func.row_number()
            .over(
                partition_by=(table.c.site, table.c.room, table.c.kind),
                order_by=(table.c.received_at.desc(), table.c.seq.desc()),
            )
            .label("n")
        )
        columns = (
            table.c.id,
            table.c.site,
            table.c.room,
            table.c.kind,
            raw(table.c.body),
            raw(table.c.received_at),
        )
        ranked = (
            select(*columns, newest).where(table.c.kind.in_(["status", "telemetry"])).subquery()
        )
        event_type = table.c.body["type"].as_string()
        if sqlite:  # json_extract of text that is not JSON fails the whole query
            event_type = case((func.json_valid(raw(table.c.body)) == 1, event_type), else_=None)
        facts = select(*columns).where(
            table.c.received_at >= since,
            (table.c.kind == "episode")
            | ((table.c.kind == "event") & event_type.in_(["sensor_fault", "sensor_ok"])),
        )
        found: list[tuple[wire.Message, datetime, int]] = []
        with self.engine.connect() as connection:
            done: set[tuple[str, str, str]] = set()
            tried: set[tuple[str, str, str]] = set()
            for first, last in self.LAST_ROWS_PAGES:
                page = select(*(ranked.c[c.name] for c in columns)).where(
                    ranked.c.n.between(first, last)
                )
                for row in connection.execute(page):
                    group = (row.site, row.room, row.kind)
                    if first > 1 and (group in done or group not in tried):
                        continue  # after the first page: only rooms with nothing readable yet
                    tried.add(group)
                    if self._read_fact(row, found):
                        done.add(group)
                if not tried - done:
                    break
                tried -= done
            for row in connection.execute(facts):
                self._read_fact(row, found)
        found.sort(key=lambda item: (item[1], item[2]))
        return [(message, received_at) for message, received_at, _ in found]

    def _read_fact(self, row: Any, found: list[tuple[wire.Message, datetime, int]]) -> bool:
        """Add the stored message in ``row`` to ``found``; quarantine it if it is unreadable."""
        row_id, site, room, kind, body, received_at = row
        try:
            message = self._stored_message(site, room, kind, body)
            seq = getattr(message, "seq", None)
            found.append((message, read_time(received_at), -1 if seq is None else seq))
            return True
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            self.quarantine.add("message", f"id {row_id!r}, {kind} of {site}/{room}", exc)
            return False

    @staticmethod
    def _stored_message(site: object, room: object, kind: object, body: object) -> wire.Message:
        model = next((m for m in wire.MODELS.values() if m.kind.value == kind), None)
        if model is None or model.kind not in wire.AGENT_KINDS:
            raise ValueError(f"kind {kind!r} is not an agent message kind")
        # Stored as JSON, so validated as JSON (strict mode takes enum values there).
        message = model.model_validate_json(read_json_text(body), context={"from_wire": True})
        if (message.site, message.room) != (site, room):
            raise ValueError(f"body says {message.site}/{message.room}, row says {site}/{room}")
        return message

    def open_alerts(self) -> list[rules.OpenAlert]:
        """Every alert not resolved; an unreadable row is quarantined (and stays open in the
        database for a person to see), never fatal."""
        table = _table(AlertRecord)
        columns = [raw(c) if isinstance(c.type, DateTime) else c for c in table.c]
        names = [c.name for c in table.c]
        found: list[rules.OpenAlert] = []
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*columns).where(table.c.state != wire.AlertState.RESOLVED.value)
            )
            for values in rows:
                r = dict(zip(names, values, strict=True))
                try:
                    found.append(_open_alert(r))
                except (ValueError, TypeError) as exc:
                    self.quarantine.add("alert", f"alert_id {r['alert_id']!r}", exc)
        return found


def _open_alert(r: dict[str, Any]) -> rules.OpenAlert:
    notified = r["notified_at"]
    for name in ("alert_id", "site", "room", "message"):
        if not isinstance(r[name], str):
            raise ValueError(f"{name} is not text: {r[name]!r}")
    return rules.OpenAlert(
        r["alert_id"],
        r["site"],
        r["room"],
        wire.AlertType(r["type"]),
        wire.Severity(r["severity"]),
        wire.AlertState(r["state"]),
        r["episode_id"],
        read_time(r["raised_at"]),
        r["message"],
        bool(r["late"]),
        r["subject"],
        read_int(r["tier"]),
        read_time(notified) if notified is not None else None,
        r["acknowledged_by"],
    )
