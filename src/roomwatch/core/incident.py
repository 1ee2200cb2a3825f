"""The incident record staff write for each episode (POLICIES.md, RECORD and NOTIFY).

RECORD (seeds 002 §8, 004 I.B and II, 003): date, time in and out and duration come from
the episode itself; staff add the precipitating factors, who initiated, supervised and
removed, the student's behavior before, during and after, and injuries. NOTIFY (000, 002 §9,
004 I.C): who told which parent or guardian, how, and when.

The student is named by a district reference (a student number), never by name: the record
is shared with auditors and state agencies that must not learn who the child is.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

#: A district's student reference: letters, digits, dot, dash, underscore; no spaces, so a
#: name ("Jane Doe") cannot be typed in by mistake.
STUDENT_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"

StudentRef = Annotated[str, StringConstraints(pattern=STUDENT_REF_PATTERN)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


def _utc_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError("a time must carry its zone (e.g. 2026-11-23T14:05:00+00:00)")
    return value


AwareTime = Annotated[datetime | None, AfterValidator(_utc_aware)]


class NotificationMethod(StrEnum):
    PHONE = "phone"
    IN_PERSON = "in_person"
    EMAIL = "email"
    TEXT = "text"
    LETTER = "letter"


class IncidentRecord(BaseModel):
    """What staff fill in; every field may be saved empty and completed later."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_ref: StudentRef | None = None
    precipitating_factors: LongText = ""
    initiated_by: ShortText = ""
    supervised_by: ShortText = ""
    removed_by: ShortText = ""
    behavior_before: LongText = ""
    behavior_during: LongText = ""
    behavior_after: LongText = ""
    student_injury: bool | None = None
    staff_injury: bool | None = None
    injury_details: LongText = ""
    parent_notified_by: ShortText = ""
    parent_notified_whom: ShortText = ""
    parent_notification_method: NotificationMethod | None = None
    parent_notified_at: AwareTime = None
    notes: LongText = Field(default="", description="anything else staff want on the record")

    def missing(self) -> list[str]:
        """The RECORD and NOTIFY fields still empty, in form order (empty: complete)."""
        gaps = [
            name
            for name in REQUIRED_FIELDS
            if getattr(self, name) in (None, "")  # False ("no injury") is an answer
        ]
        injured = bool(self.student_injury) or bool(self.staff_injury)
        if injured and not self.injury_details:
            gaps.append("injury_details")
        return gaps

    @property
    def parent_notified(self) -> bool:
        return self.parent_notified_at is not None


#: What POLICIES.md RECORD and NOTIFY require before a record is complete.
REQUIRED_FIELDS: tuple[str, ...] = (
    "student_ref",
    "precipitating_factors",
    "initiated_by",
    "supervised_by",
    "removed_by",
    "behavior_before",
    "behavior_during",
    "behavior_after",
    "student_injury",
    "staff_injury",
    "parent_notified_by",
    "parent_notified_whom",
    "parent_notification_method",
    "parent_notified_at",
)

#: Labels for forms and reports, in form order.
FIELD_LABELS: dict[str, str] = {
    "student_ref": "Student (district reference)",
    "precipitating_factors": "Precipitating factors",
    "initiated_by": "Staff who initiated",
    "supervised_by": "Staff who supervised",
    "removed_by": "Staff who removed the student / ended the episode",
    "behavior_before": "Student's behavior before",
    "behavior_during": "Student's behavior during",
    "behavior_after": "Student's behavior after",
    "student_injury": "Injury to the student",
    "staff_injury": "Injury to staff",
    "injury_details": "Injury details",
    "parent_notified_by": "Parent notified by",
    "parent_notified_whom": "Parent / guardian notified",
    "parent_notification_method": "How",
    "parent_notified_at": "When",
    "notes": "Notes",
}
