"""Options several commands share, each defined once (the help text may differ per command)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC


def config_option(help_text: str | None = None) -> Callable[[FC], FC]:
    """``--config FILE`` (into ``config_file``): a YAML file, never a directory."""
    return click.option(
        "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help=help_text
    )


def db_option(help_text: str) -> Callable[[FC], FC]:
    """``--db URL`` (into ``database_url``)."""
    return click.option("--db", "database_url", help=help_text)


def output_option(help_text: str) -> Callable[[FC], FC]:
    """``--output FILE``: where a report or an export goes."""
    return click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help=help_text)


def by_option(what: str) -> Callable[[FC], FC]:
    """``--by USER``: who runs ``what``, for the audit trail."""
    return click.option(
        "--by", "by", required=True, help=f"Who runs the {what} (user id), for the audit."
    )


BROKER_OPTION = click.option(
    "--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT (overrides the config)."
)
DURATION_OPTION = click.option(
    "--duration", type=float, help="Stop after this many seconds (scripted runs)."
)
#: The collector's config as the compliance commands read it.
COMPLIANCE_CONFIG_OPTION = config_option("Collector config (YAML): database, calendars, profiles.")
COMPLIANCE_DB_OPTION = db_option("Database URL (overrides the config).")
