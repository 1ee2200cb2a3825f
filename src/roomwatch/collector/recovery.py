"""What a starting collector reads back: open alerts, agents' marks, room registrations,
the recent facts that rebuild each room's view, and the dead-letter counts for the caps.

A row that cannot be read is quarantined (collector/quarantine.py), never fatal: a start
must not fail on whatever the database holds (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Engine, Table, case, func, select

from roomwatch.collector.config import RoomRegistration
from roomwatch.collector.models import (
    AgentProgress,
    AlertRecord,
    DeadLetter,
    RoomRecord,
    StoredMessage,
)
from roomwatch.collector.quarantine import Quarantine, raw, read_int, read_json_text, read_time
from roomwatch.core import rules, wire
from roomwatch.core.policy import StudentBand


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


class Recovery:
    """The start-up reads over ``engine``; what cannot be read goes to ``quarantine``."""

    def __init__(self, engine: Engine, quarantine: Quarantine | None = None) -> None:
        self.engine = engine
        self.quarantine = quarantine or Quarantine()

    def dead_letter_counts(self) -> dict[str | None, int]:
        """Dead letters stored per source room (for the caps, at start)."""
        table = _table(DeadLetter)
        with self.engine.connect() as connection:
            rows = connection.execute(select(table.c.source, func.count()).group_by(table.c.source))
            return {source: int(n) for source, n in rows}

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
