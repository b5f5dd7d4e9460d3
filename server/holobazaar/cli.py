"""The `holobazaar` command. Every command that touches stored data takes the same
--data-dir, --database-url and --broker-url options (and HOLOBAZAAR_* variables) as serve."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from holobazaar import __version__
from holobazaar.accounts.cli import token_app, user_app
from holobazaar.config import Settings

app = typer.Typer(name="holobazaar", no_args_is_help=True, add_completion=False,
                  help="AR storytelling and display server for food markets.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder [var].")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL.")]
BrokerUrl = Annotated[str | None, typer.Option("--broker-url", help="Broker URL [memory://].")]
ContentDir = Annotated[Path | None, typer.Option("--content", help="Content folder [.].")]


def build_settings(**flags: Any) -> Settings:
    """Flags given on the command line win over HOLOBAZAAR_* variables and defaults."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
            typer.echo(f"error: {name}: {err['msg']}", err=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"holobazaar {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Holobazaar."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8000].")] = None,
    data_dir: DataDir = None,
    content: ContentDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    watch: Annotated[bool | None, typer.Option("--watch/--no-watch",
                                               help="Reload scene files on change.")] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level [info].")] = None,
) -> None:
    """Serve the markets in the content folder over HTTP and WebSocket."""
    import uvicorn

    from holobazaar.scenes.loader import load_content
    from holobazaar.web.app import create_app

    settings = build_settings(host=host, port=port, data_dir=data_dir, content_dir=content,
                              database_url=database_url, broker_url=broker_url, watch=watch,
                              log_level=log_level)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_content(settings.content_dir)
    if not loaded.ok:
        typer.echo(loaded.report(), err=True)
        typer.echo(f"refusing to start: {len(loaded.problems)} problem(s) in "
                   f"{settings.content_dir}", err=True)
        raise typer.Exit(2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shown_host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
    for market in loaded.markets:
        typer.echo(f"serving market {market!r}: http://{shown_host}:{settings.port}/m/{market}")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port,
        log_level=settings.log_level.lower(),
        # Frames up to 16x the protocol limit get a polite error frame; beyond, a 1009 close.
        ws_max_size=settings.max_frame_bytes * 16, ws_per_message_deflate=True,
    )


@app.command()
def validate(
    directory: Annotated[Path, typer.Argument(help="Content or scenes folder.")] = Path("."),
) -> None:
    """Check every scene file; print each problem with file, line and path."""
    from holobazaar.scenes.loader import load_content

    content = load_content(directory)
    if not content.ok:
        typer.echo(content.report())
        typer.echo(f"{len(content.problems)} problem(s)", err=True)
        raise typer.Exit(1)
    displays = sum(len(m.displays) for m in content.markets.values())
    typer.echo(f"ok: {len(content.markets)} market(s), {displays} display(s), "
               f"{len(content.assets)} asset(s)")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None,
               broker_url: BrokerUrl = None, revision: str = "head") -> None:
    """Apply database migrations."""
    from holobazaar import db

    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url)
    db.upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
