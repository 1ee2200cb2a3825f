"""``roomwatch report``: the compliance reports (docs/compliance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from roomwatch.cli.open_database import open_existing
from roomwatch.cli.options import COMPLIANCE_CONFIG_OPTION, COMPLIANCE_DB_OPTION, output_option


@click.command()
@click.argument("kind", type=click.Choice(["environment", "episodes", "students", "district"]))
@click.option("--site", help="One site (school); without it, every site.")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json", "pdf"]), default="csv", show_default=True
)
@output_option(
    "Write here (default: stdout for CSV and JSON, a file named after the report for PDF)."
)
@COMPLIANCE_CONFIG_OPTION
@COMPLIANCE_DB_OPTION
def report(
    kind: str,
    site: str | None,
    start: Any,
    end: Any,
    fmt: str,
    output: Path | None,
    config_file: Path | None,
    database_url: str | None,
) -> None:
    """Build a compliance report (environment, episodes, students, district)."""
    from roomwatch.compliance.render import filename, render
    from roomwatch.compliance.reports import build_report

    config, engine = open_existing(config_file, database_url)
    try:
        built = build_report(engine, kind, site, start.date(), end.date(), config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    data = render(built, fmt)
    if output is None and fmt == "pdf":
        output = Path(filename(built, fmt))
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    output.write_bytes(data)
    click.echo(f"{output} ({len(data)} bytes, audit chain head {built.audit_chain_head})")
