"""``roomwatch simulate``: a scenario file, or a generated school day, in virtual time."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for programs).")
@click.option("--verbose", is_flag=True, help="Show the programs' log lines as they run.")
@click.option(
    "--school-day",
    is_flag=True,
    help="Instead of FILE: generate a school day of ordinary use with injected incidents "
    "(docs/simulation.md) and report, per alert type, true, missed and unexplained alerts.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="With --school-day.")
@click.option(
    "--rooms", type=click.IntRange(1, 20), default=4, show_default=True, help="With --school-day."
)
@click.option(
    "--episodes",
    type=click.IntRange(0, 40),
    default=8,
    show_default=True,
    help="With --school-day: calm episodes per room.",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="ID[:BAND]",
    help="With --school-day: the rooms' policy profiles, in order, e.g. --profile us-ny "
    "--profile us-mi:elementary (default: default, us-ny, us-mi:elementary, us-ma, us-ct).",
)
@click.option(
    "--hours",
    type=click.FloatRange(0.5, 24),
    help="With --school-day: spread the day over this many hours (default: uses a few "
    "minutes apart).",
)
def simulate(
    file: Path | None,
    as_json: bool,
    verbose: bool,
    school_day: bool,
    seed: int,
    rooms: int,
    episodes: int,
    profiles: tuple[str, ...],
    hours: float | None,
) -> None:
    """Run the scenario FILE on the real agent, broker and collector, in virtual time.

    Exit status: 0 when every expectation is met, 1 when one is not, 2 when the
    file is invalid or the simulation could not run. With --school-day: 0 when
    every incident alerted in time and no alert is unexplained, 1 otherwise.
    """
    if school_day == (file is not None):
        raise click.UsageError("give a scenario FILE or --school-day, not both")
    quiet = [] if verbose else [logging.getLogger(n) for n in ("roomwatch", "amqtt", "transitions")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)  # the programs' lines would bury the summary
    try:
        if file is None:
            _simulate_day(seed, rooms, episodes, profiles, hours, as_json)
        else:
            _simulate(file, as_json)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def _simulate(file: Path, as_json: bool) -> None:
    from roomwatch.simulation.engine import simulate as run
    from roomwatch.simulation.expect import check
    from roomwatch.simulation.scenario import ConfigError, load_scenario
    from roomwatch.simulation.summary import as_json as json_text
    from roomwatch.simulation.summary import as_text
    from roomwatch.simulation.tap import SimulationError

    try:
        scenario = load_scenario(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        click.echo(f"{file}: invalid scenario ({len(exc.problems)} problem(s))", err=True)
        sys.exit(2)
    try:
        result = run(scenario)
    except SimulationError as exc:
        click.echo(f"{file}: the simulation could not run: {exc}", err=True)
        sys.exit(2)
    outcomes = check(scenario, result)
    click.echo(
        json_text(result, outcomes) if as_json else as_text(scenario, result, outcomes, str(file))
    )
    failed = [o for o in outcomes if not o.met]
    if failed:
        if as_json:
            for o in failed:
                click.echo(str(o), err=True)
        click.echo(f"{file}: {len(failed)} of {len(outcomes)} expectation(s) not met", err=True)
        sys.exit(1)


def _simulate_day(
    seed: int,
    rooms: int,
    episodes: int,
    profiles: tuple[str, ...],
    hours: float | None,
    as_json: bool,
) -> None:
    from roomwatch.core.policy import available_profiles
    from roomwatch.simulation.engine import simulate as run
    from roomwatch.simulation.school_day import ROOM_PROFILES, generate, parse_room_profile
    from roomwatch.simulation.tap import SimulationError
    from roomwatch.simulation.truth import as_json as json_text
    from roomwatch.simulation.truth import as_text, judge_day

    try:
        chosen = [parse_room_profile(p) for p in profiles] or list(ROOM_PROFILES)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc} (elementary or secondary)", param_hint="--profile"
        ) from None
    unknown = sorted({p for p, _ in chosen} - set(available_profiles()))
    if unknown:
        raise click.BadParameter(
            f"unknown policy profile(s) {', '.join(unknown)}; known: "
            + ", ".join(available_profiles()),
            param_hint="--profile",
        )
    day = generate(seed, rooms, episodes, hours, chosen)
    try:
        result = run(day.scenario)
    except SimulationError as exc:
        click.echo(f"school day {seed}: the simulation could not run: {exc}", err=True)
        sys.exit(2)
    truth = judge_day(day, result)
    click.echo(json_text(truth, result) if as_json else as_text(truth))
    if not truth.clean:
        sys.exit(1)
