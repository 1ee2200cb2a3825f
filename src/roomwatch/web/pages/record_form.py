"""The incident record form: its posted fields read into an IncidentRecord, with the
errors to show beside the form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from roomwatch.core.incident import FIELD_LABELS, IncidentRecord
from roomwatch.web.schemas import unstorable_fields

#: The widest UTC offsets there are (UTC-12 to UTC+14), in minutes.
MAX_OFFSET_MIN = 14 * 60


@dataclass
class PostedRecord:
    """What the form sent: the values as typed (to show again), the version it was loaded
    at, and the record when every field is valid."""

    values: dict[str, Any]
    version: int
    record: IncidentRecord | None = None
    errors: list[str] = field(default_factory=list)


def form_values(record: IncidentRecord) -> dict[str, Any]:
    """A stored record as the form's field values."""
    values = record.model_dump(mode="json")
    at = record.parent_notified_at
    values["parent_notified_at"] = at.isoformat() if at else ""
    return values


def read(raw: dict[str, str]) -> PostedRecord:
    values: dict[str, Any] = {name: raw.get(name, "").strip() for name in FIELD_LABELS}
    posted = PostedRecord(values, -1)
    try:
        posted.version = int(raw.get("version", ""))
    except ValueError:
        posted.errors.append("The form has no version; reload the page.")
    try:
        record = IncidentRecord.model_validate(_fields(values, raw.get("tz_offset_min", "")))
    except ValidationError as exc:
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            posted.errors.append(f"{FIELD_LABELS.get(name, name)}: {e['msg']}")
    except ValueError as exc:
        posted.errors.append(f"{FIELD_LABELS['parent_notified_at']}: {exc}")
    else:
        posted.record = record
        posted.errors += [
            f"{FIELD_LABELS.get(name, name)}: control characters are not allowed"
            for name in unstorable_fields(record)
        ]
    return posted


def _fields(values: dict[str, Any], tz_offset_min: str) -> dict[str, Any]:
    fields = dict(values)
    fields["student_ref"] = fields["student_ref"] or None
    fields["student_injury"] = _yes_no(fields["student_injury"])
    fields["staff_injury"] = _yes_no(fields["staff_injury"])
    fields["parent_notification_method"] = fields["parent_notification_method"] or None
    fields["parent_notified_at"] = _when(fields["parent_notified_at"], tz_offset_min)
    return fields


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _when(local: str, offset_min: str) -> datetime | None:
    """A datetime-local value plus the browser's UTC offset (JS getTimezoneOffset, minutes)."""
    if not local:
        return None
    moment = datetime.fromisoformat(local)
    if moment.tzinfo is not None:
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{local} is not a time anyone notified a parent") from None
    try:
        offset = int(offset_min)
    except ValueError:
        offset = MAX_OFFSET_MIN + 1
    if abs(offset) > MAX_OFFSET_MIN:
        raise ValueError("the time zone of the notification time is unknown; reload the page")
    try:
        return (moment + timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(f"{local} is not a time anyone notified a parent") from None
