"""Episode length figures as the Minnesota report gives them (seed 003, "Length of Incidents
of Seclusion"): mode, median and mean in minutes, and the share of incidents in 5-minute
buckets ("five minutes or less", "six to 10 minutes", ...). Pure.

Minutes are whole minutes rounded up, as a form asks for them: 5 min 1 s is 6 minutes, in
the "6-10" bucket.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

#: Buckets 1-5, 6-10, ... up to this many minutes; longer ones share a last bucket.
BUCKETS_UP_TO = 60
BUCKET_MIN = 5


def whole_minutes(seconds: float) -> int:
    """Minutes a form records for an episode of ``seconds`` (rounded up, at least 1)."""
    return max(1, math.ceil(seconds / 60 - 1e-9))


def bucket_label(minutes: int) -> str:
    if minutes > BUCKETS_UP_TO:
        return f"over {BUCKETS_UP_TO}"
    high = math.ceil(minutes / BUCKET_MIN) * BUCKET_MIN
    low = high - BUCKET_MIN + 1
    return f"{low}-{high}" if low > 1 else f"{BUCKET_MIN} or less"


def bucket_labels() -> list[str]:
    return [bucket_label(m) for m in range(BUCKET_MIN, BUCKETS_UP_TO + 1, BUCKET_MIN)] + [
        bucket_label(BUCKETS_UP_TO + 1)
    ]


@dataclass(frozen=True, slots=True)
class DurationFigures:
    count: int
    total_minutes: float  # exact, from the seconds
    mode_min: int | None  # the smallest of equally frequent values
    median_min: float | None
    mean_min: float | None
    max_min: int | None
    buckets: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "count": self.count,
            "total_minutes": round(self.total_minutes, 2),
            "mode_min": self.mode_min,
            "median_min": self.median_min,
            "mean_min": round(self.mean_min, 2) if self.mean_min is not None else None,
            "max_min": self.max_min,
            "buckets": self.buckets,
        }


def figures(durations_s: Iterable[float]) -> DurationFigures:
    seconds = list(durations_s)
    minutes = [whole_minutes(s) for s in seconds]
    buckets = dict.fromkeys(bucket_labels(), 0)
    for m in minutes:
        buckets[bucket_label(m)] += 1
    if not minutes:
        return DurationFigures(0, 0.0, None, None, None, None, buckets)
    counts = Counter(minutes)
    top = max(counts.values())
    return DurationFigures(
        count=len(minutes),
        total_minutes=sum(seconds) / 60,
        mode_min=min(m for m, c in counts.items() if c == top),
        median_min=float(statistics.median(minutes)),
        mean_min=statistics.fmean(minutes),
        max_min=max(minutes),
        buckets=buckets,
    )
