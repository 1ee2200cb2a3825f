"""The policy profile schema: what one jurisdiction's rules ask of a room.

A profile is data (``profiles/<id>.yaml``), validated by these models. Each
profile names the seed documents it encodes (``sources``) and may ``extends``
another, whose values it overrides key by key (lists are replaced whole).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProfileId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]
Minutes = Annotated[float, Field(gt=0, le=24 * 60)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudentBand(StrEnum):
    """Where a source sets different limits by age (e.g. Michigan)."""

    ELEMENTARY = "elementary"
    SECONDARY = "secondary"


class Source(Strict):
    seed: Annotated[str, Field(pattern=r"^\d{3}$", description="Seed file number, e.g. 003.")]
    section: str = Field(description="Where in the seed, e.g. 'App. B, Michigan' or '§6'.")
    quote: str | None = Field(None, description="The words the rule rests on, abridged.")


class TimeLimit(Strict):
    """How long an episode may last before it must end or be reviewed."""

    default_min: Minutes | None = Field(
        None, description="Limit in minutes when no band-specific limit applies; null = none set."
    )
    by_band: dict[StudentBand, Minutes] = Field(
        default_factory=dict, description="Limits that differ by student band."
    )
    plan_maximum_applies: bool = Field(
        True, description="A student's BIP/IEP maximum, when recorded, is a tighter limit."
    )
    hard_cap: bool = Field(
        False, description="True when the limit may not be extended (e.g. Maryland's 30 minutes)."
    )
    warning_fraction: float = Field(
        0.8, gt=0, lt=1, description="time_limit_warning at this share of the limit (POLICIES.md)."
    )
    basis: str = Field("", description="What the limit means, in the source's words.")

    def minutes_for(self, band: StudentBand | None) -> float | None:
        """The limit that applies to a student of ``band`` (None when unknown)."""
        if band is not None and band in self.by_band:
            return self.by_band[band]
        if self.default_min is not None:
            return self.default_min
        # Band unknown but the source sets band limits: the strictest is the safe choice.
        return min(self.by_band.values()) if self.by_band else None


class Checkpoint(Strict):
    """Something that must happen at a given minute of an episode (an alert of its own)."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    at_min: Minutes = Field(description="First due at this minute of the episode.")
    every_min: Minutes | None = Field(None, description="Then due again at this interval.")
    until_min: Minutes | None = Field(None, description="No repeats after this minute.")
    action: str = Field(description="What staff must do, in plain words.")
    by_band: dict[StudentBand, Minutes] | None = Field(
        None, description="at_min that differs by student band, overriding at_min."
    )

    def first_due_min(self, band: StudentBand | None) -> float:
        if self.by_band:
            if band is not None and band in self.by_band:
                return self.by_band[band]
            return min(self.by_band.values())
        return self.at_min

    @model_validator(mode="after")
    def _until_after_start(self) -> Checkpoint:
        if self.until_min is not None and self.until_min < self.at_min:
            raise ValueError("until_min must not be before at_min")
        return self


class Monitoring(Strict):
    continuous: bool = Field(True, description="Staff must see and hear the student throughout.")
    lapse_after_s: float = Field(
        10, gt=0, le=600, description="Staff absence longer than this is a monitoring_lapse."
    )
    checkin_every_min: Minutes | None = Field(
        None, description="A recorded observation check-in is due at this interval."
    )
    staff_within_ft: float | None = Field(
        None, gt=0, description="Supervising adult must be within this distance (Illinois: 2 ft)."
    )


class NotificationDeadline(StrEnum):
    IMMEDIATELY = "immediately"
    END_OF_SCHOOL_DAY = "end_of_school_day"
    WITHIN_SCHOOL_DAYS = "within_school_days"


class ParentNotification(Strict):
    deadline: NotificationDeadline = Field(description="When parents must be told of each use.")
    school_days: int | None = Field(
        None, ge=1, le=10, description="With within_school_days: how many."
    )
    immediate_grace_min: Minutes = Field(
        5,
        description="With immediately: minutes from the start of the episode (the student "
        "placed in the room) before parent_notification_overdue.",
    )

    @model_validator(mode="after")
    def _days_with_within(self) -> ParentNotification:
        if (self.deadline is NotificationDeadline.WITHIN_SCHOOL_DAYS) != (
            self.school_days is not None
        ):
            raise ValueError("school_days is required with, and only with, within_school_days")
        return self


class Range(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Environment(Strict):
    temperature_c: Range = Field(default_factory=lambda: Range(min=18, max=27))
    reference_delta_c: float | None = Field(
        3, gt=0, description="Max difference from a reference sensor elsewhere in the building."
    )
    lux_min: float | None = Field(150, ge=0, description="Minimum illuminance while occupied.")
    co2_max_ppm: float | None = Field(1000, gt=0, description="Ventilation indicator, when fitted.")


class RoomRequirements(Strict):
    """Physical requirements; checked at registration, reported, not sensed."""

    min_area_sq_ft: float | None = Field(None, gt=0)
    max_side_ft: float | None = Field(None, gt=0)
    min_side_ft: float | None = Field(None, gt=0)
    observation_window: bool = False
    lock_capable_forbidden: bool = Field(
        False, description="Room must be incapable of being locked."
    )
    annual_inspection: bool = False
    notes: str = ""

    def in_words(self) -> list[str]:
        """What a district must confirm about the room itself (the environment report)."""
        found = []
        if self.min_area_sq_ft is not None:
            found.append(f"floor area at least {self.min_area_sq_ft:g} sq ft")
        if self.min_side_ft is not None:
            found.append(f"no side shorter than {self.min_side_ft:g} ft")
        if self.max_side_ft is not None:
            found.append(f"no side longer than {self.max_side_ft:g} ft")
        if self.observation_window:
            found.append("an observation window giving a clear line of sight")
        if self.lock_capable_forbidden:
            found.append("incapable of being locked")
        if self.annual_inspection:
            found.append("an annual fire and safety inspection")
        return found


#: The longest repeat window a profile may set (the deadline check reads this far back).
REPEAT_WINDOW_MAX_H = 7 * 24


class Reporting(Strict):
    quarterly_due: list[Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")]] = Field(
        default_factory=list, description="MM-DD dates quarterly reports are due (e.g. MN)."
    )
    annual_due: Annotated[str, Field(pattern=r"^\d{2}-\d{2}$")] | None = None
    log_review_every_months: int | None = Field(None, ge=1, le=12)
    frequent_use_school_days: int | None = Field(
        10, ge=1, description="frequent_use at this many school days with an episode in a year."
    )
    repeat_window_h: float | None = Field(
        None,
        gt=0,
        le=REPEAT_WINDOW_MAX_H,
        description="An episode that begins within this many hours of the end of an earlier "
        "one (same room, or same student when the records name one) raises frequent_use with "
        "the repeat_checkpoint's action (IL: any three-hour period).",
    )
    repeat_checkpoint: str | None = Field(
        None, description="With repeat_window_h: the id of the checkpoint whose action is due."
    )


class PolicyProfile(Strict):
    """One jurisdiction's rules, fully resolved (after ``extends``)."""

    id: ProfileId
    name: str
    jurisdiction: str
    sources: list[Source] = Field(min_length=1)
    extends: ProfileId | None = None
    seclusion_allowed: bool = Field(
        True,
        description="False where seclusion is forbidden: a closed door with no staff present "
        "during an episode is then itself a violation (seclusion_prohibited).",
    )
    locking_allowed: bool = Field(False, description="No source allows a locked, occupied room.")
    time_limit: TimeLimit = Field(default_factory=TimeLimit)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    parent_notification: ParentNotification
    environment: Environment = Field(default_factory=Environment)
    room: RoomRequirements = Field(default_factory=RoomRequirements)
    reporting: Reporting = Field(default_factory=Reporting)
    notes: str = ""

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return next(c for c in self.checkpoints if c.id == checkpoint_id)

    @model_validator(mode="after")
    def _unique_checkpoints(self) -> PolicyProfile:
        ids = [c.id for c in self.checkpoints]
        if len(ids) != len(set(ids)):
            raise ValueError("checkpoint ids must be unique within a profile")
        repeat = self.reporting
        if (repeat.repeat_window_h is None) != (repeat.repeat_checkpoint is None):
            raise ValueError("reporting: repeat_window_h and repeat_checkpoint go together")
        if repeat.repeat_checkpoint is not None and repeat.repeat_checkpoint not in ids:
            raise ValueError(
                f"reporting.repeat_checkpoint {repeat.repeat_checkpoint!r} is not one of the "
                f"profile's checkpoints ({', '.join(ids) or 'none'})"
            )
        if self.locking_allowed:
            raise ValueError(
                "locking_allowed must be false: no source permits a locked occupied room"
            )
        return self
