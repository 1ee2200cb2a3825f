"""The kept episode verdicts (table ``episode_verdict``): written here, judged in
compliance/verdicts.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session

from roomwatch.collector.compliance_models import EpisodeVerdictRow


@dataclass(frozen=True, slots=True)
class VerdictToKeep:
    episode_id: str
    outcome: str
    computed_at: datetime
    body: dict[str, Any]


def keep_verdicts(engine: Engine, found: Iterable[VerdictToKeep]) -> None:
    """Store each verdict with its episode (replacing the one kept before)."""
    with Session(engine) as session:
        for v in found:
            # The fields are the row's columns, by name.
            session.merge(EpisodeVerdictRow(**dataclasses.asdict(v)))
        session.commit()


def forget_verdicts(session: Session, episode_ids: Sequence[str]) -> None:
    """Drop the kept verdicts of these episodes, in the caller's transaction."""
    session.execute(
        delete(EpisodeVerdictRow).where(EpisodeVerdictRow.episode_id.in_(episode_ids))  # type: ignore[attr-defined]
    )
