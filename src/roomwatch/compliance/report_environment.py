"""The environment report: per room, the share of occupied time within the temperature and
light limits, and every excursion (ROOM; 002 §1, 004 I.A). The figures are pure
(:func:`room_environment`); the readings come from the read side."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from roomwatch.collector.read.records import StoredReading
from roomwatch.collector.read.report_rows import occupied_readings
from roomwatch.compliance.report_model import Built, Chart, Context, ReportTable, share
from roomwatch.core.rules import EnvironmentLimits

METRICS = ("temperature", "light")


@dataclass(frozen=True, slots=True)
class RoomEnvironment:
    """One room's occupied seconds, seconds with a reading and within the limit (per
    metric), and its excursions (each with its metric, from, to, lowest, highest)."""

    occupied_s: float
    known_s: dict[str, float]
    within_s: dict[str, float]
    excursions: list[dict[str, Any]]

    def share(self, metric: str) -> float | None:
        return share(self.within_s[metric], self.known_s[metric])


def room_environment(
    readings: list[StoredReading], limits: EnvironmentLimits, cap: float, interval_s: float
) -> RoomEnvironment:
    """A room's figures: each reading stands for the time to the next one, at most ``cap``
    (the last one for the telemetry interval, at most ``cap``)."""
    times = [r.ts for r in readings]
    weights = [min(cap, (b - a).total_seconds()) for a, b in itertools.pairwise(times)]
    weights.append(min(cap, interval_s))
    lux_min = limits.lux_min
    checks: dict[str, tuple[list[float | None], Callable[[float], bool] | None]] = {
        "temperature": ([r.temperature_c for r in readings], limits.temperature_c.contains),
        "light": (
            [r.lux for r in readings],
            (lambda v: v >= lux_min) if lux_min is not None else None,
        ),
    }
    known_s: dict[str, float] = {}
    within_s: dict[str, float] = {}
    excursions: list[dict[str, Any]] = []
    for name, (values, ok) in checks.items():
        known, within, runs = _metric(times, weights, values, ok, cap)
        excursions.extend({"metric": name} | run for run in runs)
        known_s[name], within_s[name] = known, within
    return RoomEnvironment(sum(weights), known_s, within_s, excursions)


def _metric(
    times: list[datetime],
    weights: list[float],
    values: list[float | None],
    ok: Callable[[float], bool] | None,
    cap: float,
) -> tuple[float, float, list[dict[str, Any]]]:
    """Seconds with a reading, seconds within the limit, and the excursions: runs of
    consecutive readings outside it, each within ``cap`` of the one before."""
    known = within = 0.0
    runs: list[dict[str, Any]] = []
    run: dict[str, Any] | None = None
    if ok is None:
        return known, within, runs
    for i, value in enumerate(values):
        if value is None:
            continue
        weight = weights[i]
        known += weight
        inside = ok(value)
        if inside:
            within += weight
        contiguous = run is not None and i > 0 and weights[i - 1] < cap
        if run is not None and not inside and contiguous:
            run["to"] = times[i] + timedelta(seconds=weight)
            run["values"].append(value)
            continue
        if run is not None:
            runs.append(run)
            run = None
        if not inside:
            run = {"from": times[i], "to": times[i] + timedelta(seconds=weight), "values": [value]}
    if run is not None:
        runs.append(run)
    for r in runs:
        seen = r.pop("values")
        r["lowest"], r["highest"] = min(seen), max(seen)
    return known, within, runs


def _rooms(c: Context) -> dict[tuple[str, str], list[StoredReading]]:
    rooms: dict[tuple[str, str], list[StoredReading]] = defaultdict(list)
    for r in occupied_readings(c.engine, c.site, c.since, c.until):
        rooms[(r.site, r.room)].append(r)
    return rooms


def environment(c: Context) -> Built:
    # A reading stands for the time to the next occupied reading, at most this long.
    cap = max(60.0, 3 * c.config.telemetry_interval_s)
    rooms = _rooms(c)
    figures: dict[tuple[str, str], tuple[EnvironmentLimits, RoomEnvironment]] = {}
    for (site, room), readings in sorted(rooms.items()):
        limits = EnvironmentLimits.from_profile(c.book.for_room(site, room).profile)
        env = room_environment(readings, limits, cap, c.config.telemetry_interval_s)
        figures[(site, room)] = (limits, env)
    excursions = [
        {"site": site, "room": room} | e
        for (site, room), (_, env) in figures.items()
        for e in env.excursions
    ]
    excursions.sort(key=lambda e: (e["from"], e["site"], e["room"]))
    notes = [
        "Occupied: the room reported occupied, or an episode was open. Each reading stands "
        f"for the time until the next one, at most {cap:g} s."
    ]
    return (
        "Room environment",
        _summary(figures, len(excursions)),
        _tables(c, figures, excursions),
        [_chart(c, figures)],
        notes,
    )


def _summary(
    figures: dict[tuple[str, str], tuple[EnvironmentLimits, RoomEnvironment]], excursions: int
) -> dict[str, Any]:
    # Whole seconds per room, as the district's figures have always been summed.
    totals = Counter[str]()
    for _, env in figures.values():
        for name in METRICS:
            totals[f"{name}_known_s"] += int(env.known_s[name])
            totals[f"{name}_within_s"] += int(env.within_s[name])
        totals["occupied_s"] += int(env.occupied_s)
    return {
        "rooms": len(figures),
        "occupied_hours": round(totals["occupied_s"] / 3600, 3),
        "share_within_temperature": share(
            totals["temperature_within_s"], totals["temperature_known_s"]
        ),
        "share_within_light": share(totals["light_within_s"], totals["light_known_s"]),
        "excursions": excursions,
    }


def _tables(
    c: Context,
    figures: dict[tuple[str, str], tuple[EnvironmentLimits, RoomEnvironment]],
    excursions: list[dict[str, Any]],
) -> list[ReportTable]:
    rows = [
        [
            site,
            room,
            round(env.occupied_s / 3600, 3),
            env.share("temperature"),
            env.share("light"),
            len(env.excursions),
            f"{limits.temperature_c.min}-{limits.temperature_c.max}",
            limits.lux_min,
        ]
        for (site, room), (limits, env) in figures.items()
    ]
    # The profile's physical rules (room.*): not sensed, so listed for the district to confirm.
    requirements = []
    for site, room in figures:
        profile = c.book.for_room(site, room).profile
        if words := profile.room.in_words():
            requirements.append([site, room, profile.id, "; ".join(words)])
    return [
        ReportTable(
            id="rooms",
            title="Occupied time within limits, by room",
            columns=[
                "site",
                "room",
                "occupied_hours",
                "share_within_temperature",
                "share_within_light",
                "excursions",
                "temperature_limits_c",
                "light_min_lux",
            ],
            rows=rows,
        ),
        ReportTable(
            id="excursions",
            title="Every excursion outside the limits while occupied",
            columns=["site", "room", "metric", "from", "to", "minutes", "lowest", "highest"],
            rows=[_excursion_row(e) for e in excursions],
        ),
        ReportTable(
            id="room_requirements",
            title="Physical requirements of the room's profile, to confirm (not sensed)",
            columns=["site", "room", "profile", "requirements"],
            rows=requirements,
        ),
    ]


def _excursion_row(e: dict[str, Any]) -> list[Any]:
    return [
        e["site"],
        e["room"],
        e["metric"],
        e["from"].isoformat(),
        e["to"].isoformat(),
        round((e["to"] - e["from"]).total_seconds() / 60, 2),
        e["lowest"],
        e["highest"],
    ]


def _chart(
    c: Context, figures: dict[tuple[str, str], tuple[EnvironmentLimits, RoomEnvironment]]
) -> Chart:
    shares = {name: [env.share(name) or 0.0 for _, env in figures.values()] for name in METRICS}
    return Chart(
        id="share_within",
        title="Share of occupied time within limits",
        x_label="room",
        y_label="share of occupied time",
        labels=[room if c.site else f"{site}/{room}" for site, room in figures],
        series=shares,
    )
