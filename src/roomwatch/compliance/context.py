"""Which rules apply to a room: its policy profile, student band and school calendar."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from roomwatch.collector.config import CollectorConfig
from roomwatch.collector.read.report_rows import room_profiles
from roomwatch.core.calendar import SchoolCalendar
from roomwatch.core.policy import PolicyProfile, ProfileError, StudentBand, load_profile

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoomRules:
    profile: PolicyProfile
    band: StudentBand | None
    calendar: SchoolCalendar


class Rulebook:
    """The rules of every room, read once: the config's room entry wins, then the profile
    registered for the room, then the one its agent reports, then the default profile."""

    def __init__(self, engine: Engine, config: CollectorConfig) -> None:
        self.config = config
        self._profiles: dict[str, PolicyProfile] = {}
        self._registered, self._reported = room_profiles(engine)

    def for_room(self, site: str, room: str) -> RoomRules:
        key = (site, room)
        settings = self.config.rooms.get(f"{site}/{room}")
        chosen = (
            (settings.profile if settings else None)
            or self._registered.get((site, room))
            or self._reported.get((site, room))
            or self.config.default_profile
        )
        profile = self._profiles.get(chosen)
        if profile is None:
            try:
                profile = load_profile(chosen)
            except ProfileError:
                log.warning("room %s/%s names unknown profile %r; using the default", *key, chosen)
                profile = load_profile(self.config.default_profile)
            self._profiles[chosen] = profile
        band = settings.student_band if settings else None
        return RoomRules(profile, band, self.config.calendar_for(site))
