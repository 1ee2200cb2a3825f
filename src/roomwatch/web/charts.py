"""Small inline SVG line charts, drawn on the server: no chart library, no script, and they
print as they look."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD_X, PAD_Y = 480, 200, 48, 26


def line_chart(
    points: Sequence[tuple[datetime, float | None]],
    unit: str,
    low: float | None = None,
    high: float | None = None,
) -> Markup:
    """A line of ``points`` with the allowed band (``low``..``high``) shaded; gaps where a
    reading is missing (the agent could not vouch for it) stay gaps."""
    known = [(t, v) for t, v in points if v is not None]
    if not known:
        return Markup('<p class="muted">No readings for this episode.</p>')
    values = [v for _, v in known] + [x for x in (low, high) if x is not None]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.08
    lo, hi = lo - margin, hi + margin
    t0, t1 = known[0][0], known[-1][0]
    span = max((t1 - t0).total_seconds(), 1.0)

    def x(t: datetime) -> float:
        return PAD_X + (t - t0).total_seconds() / span * (WIDTH - 2 * PAD_X)

    def y(v: float) -> float:
        return HEIGHT - PAD_Y - (v - lo) / (hi - lo) * (HEIGHT - 2 * PAD_Y)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(unit)} over the episode">'
    ]
    if low is not None or high is not None:
        top = y(high if high is not None else hi)
        bottom = y(low if low is not None else lo)
        parts.append(
            f'<rect class="band" x="{PAD_X}" y="{top:.1f}" width="{WIDTH - 2 * PAD_X}" '
            f'height="{max(bottom - top, 0):.1f}"><title>allowed range</title></rect>'
        )
    for segment in _segments(points):
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in segment)
        if len(segment) == 1:
            t, v = segment[0]
            parts.append(f'<circle class="line" cx="{x(t):.1f}" cy="{y(v):.1f}" r="2"/>')
        else:
            parts.append(f'<polyline class="line" points="{coords}"/>')
    for value in (lo + margin, hi - margin):
        parts.append(
            f'<text x="{PAD_X - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.0f}</text>'
        )
    parts.append(
        f'<text x="{PAD_X}" y="{HEIGHT - 4}">{t0:%H:%M}</text>'
        f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 4}" text-anchor="end">{t1:%H:%M} UTC</text>'
        f'<text x="{WIDTH - 4}" y="16" text-anchor="end">{escape(unit)}</text></svg>'
    )
    # Every interpolated text went through escape(); the rest is numbers we formatted.
    return Markup("".join(parts))  # noqa: S704


def _segments(
    points: Sequence[tuple[datetime, float | None]],
) -> list[list[tuple[datetime, float]]]:
    segments: list[list[tuple[datetime, float]]] = [[]]
    for t, v in points:
        if v is None:
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((t, v))
    return [s for s in segments if s]
