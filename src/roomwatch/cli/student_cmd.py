"""``roomwatch student``: one student's records, exported or anonymised (a parent's request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from roomwatch.cli.open_database import open_existing
from roomwatch.cli.options import (
    COMPLIANCE_CONFIG_OPTION,
    COMPLIANCE_DB_OPTION,
    by_option,
    output_option,
)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@click.group()
def student() -> None:
    """One student's records, by district reference (a parent's request)."""


@student.command("export")
@click.argument("ref")
@by_option("export")
@output_option("Default: stdout.")
@COMPLIANCE_CONFIG_OPTION
@COMPLIANCE_DB_OPTION
def student_export(
    ref: str, by: str, output: Path | None, config_file: Path | None, database_url: str | None
) -> None:
    """Every record of student REF as JSON (with history and verdicts)."""
    from roomwatch.compliance import privacy

    config, engine = open_existing(config_file, database_url)
    try:
        found = privacy.export_student(engine, ref, by, _now, config)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    text = json.dumps(found, indent=2, ensure_ascii=False, default=str) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{output}: {len(found['episodes'])} record(s)")


@student.command("delete")
@click.argument("ref")
@by_option("deletion")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@COMPLIANCE_CONFIG_OPTION
@COMPLIANCE_DB_OPTION
def student_delete(
    ref: str, by: str, yes: bool, config_file: Path | None, database_url: str | None
) -> None:
    """Anonymise every record of student REF (an audit entry, without personal data, stays)."""
    from roomwatch.compliance import privacy

    if not yes:
        click.confirm(f"Clear the reference and narrative of every record of {ref}?", abort=True)
    _config, engine = open_existing(config_file, database_url)
    try:
        ids = privacy.delete_student(engine, ref, by, _now)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"anonymised {len(ids)} record(s) of {ref}")
