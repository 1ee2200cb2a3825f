"""``roomwatch user``: the web app's users, added and unlocked from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from roomwatch.cli.configs import load
from roomwatch.cli.open_database import engine_on
from roomwatch.cli.options import config_option, db_option

_DB_OPTION = db_option("Database URL (default: the collector config's).")


@click.group()
def user() -> None:
    """Web-app users (staff, admin, auditor)."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["staff", "admin", "auditor"]), default="staff", show_default=True
)
@click.option("--name", "display_name", help="The name shown in the app (default: USERNAME).")
@config_option()
@_DB_OPTION
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def user_add(
    username: str,
    role: str,
    display_name: str | None,
    config_file: Path | None,
    database_url: str | None,
    password_stdin: bool,
) -> None:
    """Add a user who signs in to the web app. Asks for the password (twice)."""
    from datetime import UTC, datetime

    from roomwatch.collector.accounts import UserExistsError, create_user
    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate

    config = load(config_file, CollectorConfig)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = engine_on(database_url or config.database_url)
    try:
        migrate(engine)
        created = create_user(
            engine, username, display_name or username, role, password, "cli", datetime.now(UTC)
        )
    except (UserExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"added {role} {created.username!r} (id {created.id})")


@user.command("unlock")
@click.argument("username", required=False)
@click.option("--address", help="Lift the locks on this address (every user from it) instead.")
@config_option()
@_DB_OPTION
def user_unlock(
    username: str | None, address: str | None, config_file: Path | None, database_url: str | None
) -> None:
    """Lift the sign-in locks that repeated wrong passwords put on USERNAME (audited)."""
    from datetime import UTC, datetime

    from roomwatch.collector.config import CollectorConfig
    from roomwatch.collector.database import migrate
    from roomwatch.web import throttle

    if (username is None) == (address is None):
        raise click.UsageError("give a USERNAME or --address, one of them")
    config = load(config_file, CollectorConfig)
    engine = engine_on(database_url or config.database_url, must_exist=True)
    try:
        migrate(engine)
        lifted = throttle.unlock(
            engine, "cli", datetime.now(UTC), username=username, address=address
        )
    finally:
        engine.dispose()
    click.echo(f"lifted {lifted} sign-in lock(s) on {username or address}")
