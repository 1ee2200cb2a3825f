"""The collector's write path: messages, the rows derived from them, alert steps, dead
letters and delivery attempts, with their audit entries, one transaction per batch."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Engine,
    Table,
    case,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from roomwatch.collector import audit
from roomwatch.collector.config import RoomRegistration
from roomwatch.collector.database import as_utc
from roomwatch.collector.dead_letters import DeadRecord, shrink
from roomwatch.collector.derived import STATUS_COLUMNS, Derived, derive
from roomwatch.collector.models import (
    AgentProgress,
    AgentRecord,
    AlertRecord,
    AlertTransition,
    DeadLetter,
    DeliveryAttempt,
    EpisodeRecord,
    EventRecord,
    RoomRecord,
    SiteRecord,
    StoredMessage,
    TelemetryRecord,
)
from roomwatch.core import rules, wire
from roomwatch.core.claimed_time import Judged, TimeWindow, judge

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


Bind = Callable[[Any], Any]


def _binder(column: Any, dialect: Dialect) -> Bind | None:
    """How SQLAlchemy's own type for ``column`` converts a value for the driver (None: as it
    is). A JSON document already encoded (:class:`_Json`) goes in as it is."""
    process: Bind | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(column.type, JSON):
        return process
    json_process = process
    return lambda v: v if v is None or isinstance(v, _Json) else json_process(v)


#: Ids per ``IN (...)`` when looking up which of a batch's messages are stored already
#: (below SQLite's oldest limit of 999 bound variables).
_SQLITE_IDS_PER_SELECT = 900


# ------------------------------------------------------------------------ derived rows


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


def message_row(
    m: wire.Message, received_at: datetime, skew_s: float | None, encoded: bool
) -> dict[str, Any]:
    """The ``message`` row of ``m`` (``encoded``: the body as the JSON text pydantic writes,
    the same document, which SQLite takes as it is)."""
    return {
        "id": m.id,
        "site": m.site,
        "room": m.room,
        "kind": m.kind.value,
        "seq": getattr(m, "seq", None),
        "ts": m.ts,
        "received_at": as_utc(received_at),
        "body": _Json(m.model_dump_json()) if encoded else m.model_dump(mode="json"),
        "clock_skew_s": skew_s,
    }


class Store:
    """The collector's write path: one transaction per batch (what a starting collector
    reads back is collector/recovery.py)."""

    def __init__(
        self,
        engine: Engine,
        window: TimeWindow | None = None,
    ) -> None:
        self.engine = engine
        #: The collector's window for claimed times (None: believe every time).
        self.window = window

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
                self._derived(session, derive(as_judged, new_ids))
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
            message_row(m, received_at, j.skew_s, encoded=sqlite)
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

        On SQLite the rows go to the driver as tuples, each value through its column type's
        own bind processor (:func:`_binder`): Core's per-row parameter building costs more
        than the insert itself. PostgreSQL goes through Core."""
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
            sql,
            [tuple(row[n] if p is None else p(row[n]) for n, p in plan) for row in rows],
        )

    @functools.lru_cache(maxsize=32)  # noqa: B019 - a handful of tables, for the store's life
    def _sqlite_insert(
        self, table: Table, keys: tuple[str, ...], ignore: bool
    ) -> tuple[str, list[tuple[str, Bind | None]]]:
        """The dialect's INSERT for these columns, and its positional parameters: each
        one's name, and how to convert it."""
        statement = _insert_ignore(self.engine, table) if ignore else _insert(self.engine, table)
        compiled = statement.compile(dialect=self.engine.dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ())
        dialect = self.engine.dialect
        return compiled.string, [(n, _binder(table.c[n], dialect)) for n in names]

    def _derived(self, session: Session, d: Derived) -> None:
        """Sites, rooms, agents and episodes by upsert (in key order, so that collectors
        sharing one PostgreSQL take row locks in the same order); telemetry and events by one
        bulk insert each."""
        site = _table(SiteRecord)
        session.execute(_insert_ignore(self.engine, site), [{"id": s} for s in sorted(d.sites)])
        self._rooms(session, d)
        if d.agents:
            self._agents(session, d)
        if d.episodes:
            self._episodes(session, d)
        self._bulk_insert(session, _table(TelemetryRecord), d.telemetry, ignore=True)
        self._bulk_insert(session, _table(EventRecord), d.events, ignore=True)

    def _rooms(self, session: Session, d: Derived) -> None:
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

    def _agents(self, session: Session, d: Derived) -> None:
        agent = _table(AgentRecord)
        insert = _insert(self.engine, agent)
        new = insert.excluded
        # The same order as derived.newer_status: later status time wins; a tie, offline.
        newer = new.last_status_at.is_not(None) & (
            agent.c.last_status_at.is_(None)
            | (new.last_status_at > agent.c.last_status_at)
            | (
                (new.last_status_at == agent.c.last_status_at)
                & (new.state == "offline")
                & (agent.c.state != "offline")
            )
        )
        status = {c: case((newer, new[c]), else_=agent.c[c]) for c in STATUS_COLUMNS}
        session.execute(
            insert.on_conflict_do_update(
                index_elements=[agent.c.site, agent.c.room],
                set_={**status, "last_heard_at": _later(agent.c.last_heard_at, new.last_heard_at)},
            ),
            [d.agents[k] for k in sorted(d.agents)],
        )

    def _episodes(self, session: Session, d: Derived) -> None:
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
