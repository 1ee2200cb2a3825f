"""The database: engine set-up (SQLite in WAL mode, or PostgreSQL), migrations, writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from roomwatch.collector.models import (
    AgentProgress,
    AlertRecord,
    AlertTransition,
    DeadLetter,
    DeliveryAttempt,
    StoredMessage,
)
from roomwatch.core import rules, wire

log = logging.getLogger(__name__)


def as_utc(value: datetime) -> datetime:
    """Every time we store is UTC: SQLite hands it back naive, PostgreSQL in the session's
    zone; either way, return it as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: an ack follows each commit, and the agent then forgets; a power cut must
            # not take back a commit we acknowledged.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # The session's zone decides how timestamptz comes back: make it UTC, whatever the server's.
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (Alembic, from the first schema on)."""
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("roomwatch.collector") / "migrations")
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _insert_ignore(engine: Engine, table: Any) -> Any:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


class Store:
    """Everything the collector writes and reads back at start."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------- writing

    def write_batch(
        self,
        received: Iterable[tuple[wire.Message, datetime]],
        transitions: Iterable[rules.Transition] = (),
        dead: Iterable[tuple[wire.Invalid, datetime]] = (),
        attempts: Iterable[DeliveryAttempt] = (),
    ) -> set[str]:
        """One transaction: alert steps, messages, dead letters and delivery attempts.
        Returns the new message ids.

        All or nothing, so a batch retried after a failure is never half written twice.
        """
        with Session(self.engine) as session:
            self._transitions(session, transitions, None)
            new_ids = self._messages(session, received)
            for invalid, received_at in dead:
                session.add(
                    DeadLetter(
                        received_at=received_at,
                        topic=invalid.topic[:1024],
                        payload=invalid.payload,
                        reason=invalid.reason[:1000],
                        field_path=invalid.field[:200] if invalid.field else None,
                    )
                )
            session.add_all(list(attempts))
            session.commit()
        return new_ids

    def save_messages(self, received: Iterable[tuple[wire.Message, datetime]]) -> set[str]:
        """Store each message once; returns the ids that were new (not stored before)."""
        return self.write_batch(received)

    def save_transitions(
        self, transitions: Iterable[rules.Transition], by: str | None = None
    ) -> None:
        with Session(self.engine) as session:
            self._transitions(session, transitions, by)
            session.commit()

    def save_dead_letter(self, invalid: wire.Invalid, received_at: datetime) -> None:
        self.write_batch((), (), [(invalid, received_at)])

    def _messages(
        self, session: Session, received: Iterable[tuple[wire.Message, datetime]]
    ) -> set[str]:
        rows = [
            {
                "id": m.id,
                "site": m.site,
                "room": m.room,
                "kind": m.kind.value,
                "seq": getattr(m, "seq", None),
                "ts": m.ts,
                "received_at": received_at,
                "body": m.model_dump(mode="json"),
            }
            for m, received_at in received
        ]
        if not rows:
            return set()
        table = StoredMessage.__table__  # type: ignore[attr-defined]
        statement = _insert_ignore(self.engine, table).returning(table.c.id)
        return {row[0] for row in session.execute(statement, rows)}

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
        with Session(self.engine) as session:
            for (site, room), seq in progress.items():
                session.merge(AgentProgress(site=site, room=room, acked_seq=seq, updated_at=at))
            session.commit()

    # ------------------------------------------------------------- reading

    def load_progress(self) -> dict[tuple[str, str], int]:
        with Session(self.engine) as session:
            rows = session.execute(select(AgentProgress)).scalars()
            return {(r.site, r.room): r.acked_seq for r in rows}

    def recent_room_facts(self, since: datetime) -> list[tuple[wire.Message, datetime]]:
        """What a restarted collector needs to rebuild each room's view, oldest first:
        each room's last status and telemetry, and its episode and sensor-fault messages
        since ``since``."""
        table = StoredMessage.__table__  # type: ignore[attr-defined]
        latest = (
            select(table.c.site, table.c.room, table.c.kind, func.max(table.c.ts).label("ts"))
            .where(table.c.kind.in_(["status", "telemetry"]))
            .group_by(table.c.site, table.c.room, table.c.kind)
            .subquery()
        )
        last_of_kind = select(table.c.kind, table.c.body, table.c.received_at).join(
            latest,
            (table.c.site == latest.c.site)
            & (table.c.room == latest.c.room)
            & (table.c.kind == latest.c.kind)
            & (table.c.ts == latest.c.ts),
        )
        facts = select(table.c.kind, table.c.body, table.c.received_at).where(
            table.c.ts >= since,
            (table.c.kind == "episode")
            | (
                (table.c.kind == "event")
                & table.c.body["type"].as_string().in_(["sensor_fault", "sensor_ok"])
            ),
        )
        found: list[tuple[wire.Message, datetime]] = []
        with self.engine.connect() as connection:
            rows = [*connection.execute(last_of_kind), *connection.execute(facts)]
            for kind, body, received_at in rows:
                model = wire.MODELS[wire.Kind(kind)]
                # Stored as JSON, so validated as JSON (strict mode takes enum values there).
                found.append((model.model_validate_json(json.dumps(body)), as_utc(received_at)))
        found.sort(key=lambda item: item[0].ts)
        return found

    def open_alerts(self) -> list[rules.OpenAlert]:
        with Session(self.engine) as session:
            records = session.execute(
                select(AlertRecord).where(AlertRecord.state != wire.AlertState.RESOLVED.value)  # type: ignore[arg-type]
            ).scalars()
            return [
                rules.OpenAlert(
                    r.alert_id,
                    r.site,
                    r.room,
                    wire.AlertType(r.type),
                    wire.Severity(r.severity),
                    wire.AlertState(r.state),
                    r.episode_id,
                    as_utc(r.raised_at),
                    r.message,
                    r.late,
                    r.subject,
                    r.tier,
                    as_utc(r.notified_at) if r.notified_at else None,
                    r.acknowledged_by,
                )
                for r in records
            ]
