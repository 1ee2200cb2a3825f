"""``roomwatch audit``: check the tamper-evident audit trail (docs/compliance.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from roomwatch.cli.open_database import open_existing
from roomwatch.cli.options import COMPLIANCE_CONFIG_OPTION, COMPLIANCE_DB_OPTION


@click.group()
def audit() -> None:
    """The tamper-evident audit trail."""


@audit.command("verify")
@click.option(
    "--head",
    "export_head",
    help="A chain head printed on an export: check the trail still contains it.",
)
@COMPLIANCE_CONFIG_OPTION
@COMPLIANCE_DB_OPTION
def audit_verify(
    export_head: str | None, config_file: Path | None, database_url: str | None
) -> None:
    """Check the hash chain and the incident records against it; exit 1 at the first break."""
    from roomwatch.collector import audit as trail
    from roomwatch.compliance import records

    _config, engine = open_existing(config_file, database_url)
    try:
        result = trail.verify(engine)
        if result.broken is not None:
            _say_where_broken(engine, result)
            sys.exit(1)
        problems = records.check(engine)
        found = _entry_with_hash(engine, export_head) if export_head is not None else None
    finally:
        engine.dispose()
    if export_head is not None and found is None and export_head != trail.GENESIS:
        click.echo(
            f"BROKEN: the export's chain head {export_head} is not in the trail "
            "(entries were removed or rewritten after the export)"
        )
        sys.exit(1)
    if problems:
        for problem in problems[:20]:
            click.echo(f"BROKEN: {problem.describe()}")
        if len(problems) > 20:
            click.echo(f"... and {len(problems) - 20} more")
        click.echo(f"The audit chain itself holds: {result.entries} entries, head {result.head}.")
        sys.exit(1)
    click.echo(
        f"OK: {result.entries} entries, head {result.head}; "
        "every incident record matches the trail."
    )
    if found is not None:
        click.echo(f"The export's chain head is entry {found.seq}.")


def _say_where_broken(engine: Any, result: Any) -> None:
    """The first broken entry, what it says happened, and how far the chain holds."""
    from sqlmodel import Session

    from roomwatch.collector import audit as trail
    from roomwatch.collector.models import AuditEntry

    with Session(engine) as session:
        entry = session.get(AuditEntry, result.broken.seq)
    says = (
        f"; the entry says: {entry.actor} did {entry.action} on {entry.subject} at "
        f"{trail.canonical_time(entry.at)}"
        if entry is not None
        else ""
    )
    click.echo(f"BROKEN at entry {result.broken.seq}: {result.broken.reason}{says}")
    click.echo(f"The chain holds up to entry {result.broken.seq - 1} (head {result.head}).")


def _entry_with_hash(engine: Any, chain_head: str) -> Any:
    """The trail's entry whose hash is ``chain_head`` (None when the trail lacks it)."""
    from sqlmodel import Session, select

    from roomwatch.collector.models import AuditEntry

    with Session(engine) as session:
        return session.exec(select(AuditEntry).where(AuditEntry.hash == chain_head)).first()
