"""What every command-line module shares: the common options, settings built from flags,
and an engine on an up-to-date schema. Domain CLIs import this, never holobazaar.cli."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from holobazaar.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder [var].")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
BrokerUrl = Annotated[str | None, typer.Option("--broker-url", help="Broker URL [memory://].")]
AssetStore = Annotated[str | None, typer.Option(
    "--asset-store", help="Stored assets: local, postgresql (the shared database) or "
    "s3://bucket/prefix [local].")]
BaseUrl = Annotated[str | None, typer.Option(
    "--base-url", help="Public address for markers and printed links.")]
ContentDir = Annotated[Path | None, typer.Option("--content", help="Content folder [.].")]


def build_settings(**flags: Any) -> Settings:
    """Flags given on the command line win over HOLOBAZAAR_* variables and defaults."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            # A check across settings (model validator) has no location: say "settings".
            name = ("--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
                    if err["loc"] else "settings")
            typer.echo(f"error: {name}: {err['msg']}", err=True)
        raise typer.Exit(2) from None


def content_loader(ctx: typer.Context) -> Callable[[Path], Any]:
    """The content loader `holobazaar` hands its commands as the root context's object
    (cli.py: holobazaar.content.load_content, which reads the shows and sample bindings of
    other domains, so a domain's own command cannot import it without a cycle)."""
    loader = ctx.find_root().obj
    if not callable(loader):
        raise RuntimeError("a holobazaar command: run it through holobazaar.cli.app")
    return loader


def upgraded_engine(settings: Settings) -> Engine:
    """The database engine after applying any pending migration."""
    from holobazaar import db  # late: SQLAlchemy and Alembic are slow to import for --help

    db.upgrade(settings.resolved_database_url)
    return db.make_engine(settings.resolved_database_url)
