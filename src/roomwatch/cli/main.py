"""The ``roomwatch`` command line: composes the programs below it.

This module is the top-level group only; each command (or group of commands) lives in
its own ``*_cmd`` module and is registered here. Those modules import the programs they
run inside the command, so that ``roomwatch agent`` on a Pi never loads the collector.
"""

from __future__ import annotations

import click

from roomwatch import __version__
from roomwatch.cli.agent_cmd import agent
from roomwatch.cli.audit_cmd import audit
from roomwatch.cli.collector_cmd import collector
from roomwatch.cli.config_cmd import validate_config
from roomwatch.cli.demo_cmd import demo
from roomwatch.cli.logs import setup_logging
from roomwatch.cli.policies_cmd import policies
from roomwatch.cli.report_cmd import report
from roomwatch.cli.simulate_cmd import simulate
from roomwatch.cli.student_cmd import student
from roomwatch.cli.user_cmd import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one object per line (structured logs).",
)
@click.version_option(__version__, prog_name="roomwatch")
def main(log_level: str, log_format: str) -> None:
    """Roomwatch: no student locked in, left unwatched, or kept past the limit."""
    setup_logging(log_level, log_format)


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


for _command in (
    agent,
    audit,
    collector,
    demo,
    policies,
    report,
    simulate,
    student,
    user,
    validate_config,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
