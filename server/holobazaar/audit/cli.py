"""`holobazaar audit verify` and `holobazaar audit export --since`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder [var].")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
BrokerUrl = Annotated[str | None, typer.Option("--broker-url", help="Broker URL [memory://].")]


def _engine(data_dir, database_url, broker_url):
    from holobazaar import db
    from holobazaar.cli import build_settings  # late: holobazaar.cli imports this module

    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url)
    db.upgrade(settings.resolved_database_url)
    return db.make_engine(settings.resolved_database_url)


@audit_app.command("verify")
def verify(data_dir: DataDir = None, database_url: DatabaseUrl = None,
           broker_url: BrokerUrl = None) -> None:
    """Check the chain; name the first broken entry (exit 1)."""
    from holobazaar.audit import service
    from holobazaar.db import session_scope

    with session_scope(_engine(data_dir, database_url, broker_url)) as session:
        problems = service.verify(session)
        count = service.count(session)
    if problems:
        typer.echo(f"broken: {problems[0]}", err=True)
        for line in problems[1:]:
            typer.echo(f"also: {line}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {count} entries, chain intact")


def _since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("export")
def export(
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 date/time (UTC if "
                                              "no zone).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File [stdout].")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Write entries (from --since) as JSON Lines, with their hashes, in chain order."""
    from holobazaar.audit import service
    from holobazaar.db import session_scope

    start = _since(since) if since else None
    stream = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        with session_scope(_engine(data_dir, database_url, broker_url)) as session:
            for line in service.export_lines(session, start):
                stream.write(line + "\n")
    finally:
        if out:
            stream.close()
