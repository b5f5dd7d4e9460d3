"""The `holobazaar` command. Every command that touches stored data takes the same
--data-dir, --database-url and --broker-url options (and HOLOBAZAAR_* variables) as serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from holobazaar import __version__, logs
from holobazaar.accounts.cli import token_app, user_app
from holobazaar.assets.cli import assets_app
from holobazaar.audit.cli import audit_app, witness_app
from holobazaar.commands import (
    AssetStore,
    BaseUrl,
    BrokerUrl,
    ContentDir,
    DatabaseUrl,
    DataDir,
    build_settings,
)
from holobazaar.config import Settings
from holobazaar.inventory.cli import inventory_app, simulate_app
from holobazaar.stories.cli import export_app, import_app

app = typer.Typer(name="holobazaar", no_args_is_help=True, add_completion=False,
                  help="AR storytelling and display server for food markets.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
tls_app = typer.Typer(no_args_is_help=True, help="HTTPS for phones: the local CA.")
app.add_typer(tls_app, name="tls")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(inventory_app, name="inventory")
app.add_typer(simulate_app, name="simulate")
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(assets_app, name="assets")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")



def _version(value: bool) -> None:
    if value:
        typer.echo(f"holobazaar {__version__}")
        raise typer.Exit()


def load_content(content_dir: Path):
    """The content folder as the server reads it (holobazaar.content; imported when a
    command needs it: the domains behind it are slow to import for --help)."""
    from holobazaar import content

    return content.load_content(content_dir)


def served_content(settings: Settings):
    """The content folder as the server checks it when it starts: a display may name its
    market's ready uploads, read from the database (after the migrations)."""
    from holobazaar import content, db
    from holobazaar.assets.service import stored_refs

    engine = db.make_engine(settings.resolved_database_url)
    try:
        refs = stored_refs(engine)
    finally:
        engine.dispose()
    return content.load_content(settings.content_dir, lambda market: refs.get(market, {}))


@app.callback()
def main_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Holobazaar."""
    ctx.obj = load_content  # the domains' commands: holobazaar.commands.content_loader


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8000].")] = None,
    data_dir: DataDir = None,
    content: ContentDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    asset_store: AssetStore = None,
    watch: Annotated[bool | None, typer.Option("--watch/--no-watch",
                                               help="Reload scene files on change.")] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level [info].")] = None,
    log_format: Annotated[str | None, typer.Option(
        help="Log lines as text or json (one JSON object per line) [text].")] = None,
    tls: Annotated[bool | None, typer.Option(
        "--tls/--no-tls", help="HTTPS/WSS with a local CA (for phones).")] = None,
    certfile: Annotated[Path | None, typer.Option(help="Real certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="Key of --certfile (PEM).")] = None,
    http_port: Annotated[int | None, typer.Option(
        help="With --tls: plain-HTTP port for the CA [port+1; 0=off].")] = None,
    base_url: BaseUrl = None,
    workers: Annotated[int | None, typer.Option(
        help="Server processes sharing the port [1]; more need --broker-url redis://.")] = None,
    redis_prefix: Annotated[str | None, typer.Option(
        help="Prefix of this deployment's Redis keys [holobazaar:].")] = None,
    osc_port: Annotated[int | None, typer.Option(
        help="UDP port for OSC show control (off by default; needs "
             "HOLOBAZAAR_OSC_SECRET).")] = None,
    osc_host: Annotated[str | None, typer.Option(
        help="Address the OSC listener binds to [127.0.0.1].")] = None,
) -> None:
    """Serve the markets in the content folder over HTTP and WebSocket."""
    import uvicorn

    from holobazaar import db
    from holobazaar.stream.fastws import BACKLOG, UVICORN_WS
    from holobazaar.tls import serving
    from holobazaar.tls.addresses import public_base_url
    from holobazaar.tls.files import TlsFileError
    from holobazaar.web.app import create_app
    from holobazaar.web.trust import create_trust_app

    settings = build_settings(host=host, port=port, data_dir=data_dir, content_dir=content,
                              database_url=database_url, broker_url=broker_url,
                              asset_store=asset_store, watch=watch,
                              log_level=log_level, log_format=log_format, tls=tls,
                              certfile=certfile, keyfile=keyfile,
                              http_port=http_port, base_url=base_url, workers=workers,
                              redis_prefix=redis_prefix, osc_port=osc_port, osc_host=osc_host)
    if settings.workers > 1 and settings.broker_url.startswith("memory://"):
        typer.echo("error: --workers: several workers need a shared broker: pass --broker-url "
                   "redis://host:port/db (with memory:// each worker would have its own hub "
                   "and its clients would miss the others' changes)", err=True)
        raise typer.Exit(2)
    if settings.workers > 1 and settings.uses_tls:
        typer.echo("error: --workers: several workers cannot serve --tls/--certfile; "
                   "terminate TLS at a reverse proxy (docs/deploy.md)", err=True)
        raise typer.Exit(2)
    logs.configure(settings.log_level, settings.log_format)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Before any worker starts, and in a child process: the server never loads Alembic.
        db.upgrade_aside(settings.resolved_database_url)
    except db.MigrationFailed as exc:
        typer.echo(f"error: refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None
    loaded = served_content(settings)
    if not loaded.ok:
        typer.echo(loaded.report(), err=True)
        typer.echo(f"refusing to start: {len(loaded.problems)} problem(s) in "
                   f"{settings.content_dir}", err=True)
        raise typer.Exit(2)
    try:
        plan = serving.prepare_tls(settings)
    except TlsFileError as exc:
        typer.echo(f"error: refusing to start: {exc.path}: {exc.problem}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"error: refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None
    for note in plan.notes if plan else []:
        typer.echo(note)
    if plan and plan.files.ca_file:
        typer.echo(f"local CA: {plan.files.ca_file} (SHA-256 {serving.ca_fingerprint(plan)})")
    for market in loaded.markets:
        for url in serving.phone_urls(settings, f"/m/{market}"):
            typer.echo(f"serving market {market!r}: {url}")
    if plan and settings.trust_port is not None:
        typer.echo(f"phones trust the CA first: http://<address above>:{settings.trust_port}/tls")
    if plan and loaded.markets:
        first = next(iter(loaded.markets))
        typer.echo(serving.terminal_qr(f"{public_base_url(settings)}/m/{first}"))
    options = dict(
        log_level=settings.log_level.lower(),
        # Frames up to 16x the protocol limit get a polite error frame; beyond, a 1009 close.
        ws_max_size=settings.max_frame_bytes * 16, ws_per_message_deflate=True,
        # /ws's raw write path (docs/protocol.md, "Fan-out and coalescing"); an import
        # path, so every worker process loads it too.
        ws=UVICORN_WS, loop="auto",
        # A festival crowd connects at once: uvicorn's 2,048 pending connections overflowed
        # (the kernel drops the rest and phones retry a second later). The kernel caps this
        # at net.core.somaxconn (docs/deploy.md).
        backlog=BACKLOG,
        # Client addresses come from holobazaar.accounts.addresses, which believes
        # X-Forwarded-For only from HOLOBAZAAR_TRUSTED_PROXIES (uvicorn's would trust loopback).
        proxy_headers=False,
        # JSON logs: uvicorn's loggers go through ours; the app logs each request.
        **logs.uvicorn_options(settings.log_format),
    )
    if settings.workers > 1:
        import os

        from holobazaar.web.app import SETTINGS_ENV

        # uvicorn binds the port once and forks the workers; each builds its app from these
        # settings (the factory reads them back from the environment).
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("holobazaar.web.app:create_app_from_env", factory=True,
                    workers=settings.workers, host=settings.host, port=settings.port,
                    **options)
    elif plan is None:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **options)
    else:
        serving.run(create_app(settings), create_trust_app, settings, plan, **options)


@app.command()
def validate(
    directory: Annotated[Path, typer.Argument(help="Content or scenes folder.")] = Path("."),
) -> None:
    """Check every scene file; print each problem with file, line and path."""
    content = load_content(directory)
    if not content.ok:
        typer.echo(content.report())
        typer.echo(f"{len(content.problems)} problem(s)", err=True)
        raise typer.Exit(1)
    displays = sum(len(m.displays) for m in content.markets.values())
    typer.echo(f"ok: {len(content.markets)} market(s), {displays} display(s), "
               f"{len(content.assets)} asset(s)")
    for warning in sorted(content.warnings):
        typer.echo(f"warning: {warning}")
    from holobazaar.assets.budgets import over_budget

    settings = Settings()
    for line in over_budget(content, settings.display_triangle_budget,
                            settings.display_byte_budget):
        typer.echo(f"warning: over budget: {line}")


@app.command()
def markers(
    market: Annotated[str, typer.Option("--market", help="Market id.")],
    fmt: Annotated[str, typer.Option("--format", help="pdf or png.")] = "pdf",
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("."),
    base_url: BaseUrl = None,
    content: ContentDir = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Printable QR markers: a card per display on A4 sheets, and an entrance poster."""
    from holobazaar.markers import service as marker_service
    from holobazaar.tls.addresses import public_base_url

    formats: dict[str, marker_service.MarkerFormat] = {"pdf": "pdf", "png": "png"}
    chosen = formats.get(fmt)
    if chosen is None:
        typer.echo(f"error: --format: {fmt!r} is not pdf or png", err=True)
        raise typer.Exit(2)
    settings = build_settings(content_dir=content, data_dir=data_dir, base_url=base_url,
                              database_url=database_url, broker_url=broker_url)
    loaded = load_content(settings.content_dir)
    if not loaded.ok:
        typer.echo(loaded.report(), err=True)
        raise typer.Exit(2)
    found = loaded.markets.get(market)
    if found is None:
        typer.echo(f"error: --market: no market {market!r} in {settings.content_dir} "
                   f"(known: {', '.join(sorted(loaded.markets)) or 'none'})", err=True)
        raise typer.Exit(2)
    base = public_base_url(settings)
    if settings.base_url is None:
        typer.echo(f"warning: no --base-url: the codes point to {base}; pass the address "
                   "phones will use, e.g. --base-url https://market.example", err=True)
    marker_set = marker_service.marker_set(found, base, marker_service.content_titles(found),
                                           marker_service.content_titles_by_language(found))
    for path in marker_service.write_markers(marker_set, out, chosen):
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(marker_set.cards)} display card(s) + entrance poster for {base}/m/{market}")


@tls_app.command("ca")
def tls_ca(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
    host: Annotated[str | None, typer.Option(help="Bind address of serve [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port of serve [8000].")] = None,
    http_port: Annotated[int | None, typer.Option(help="Trust port of serve [port+1].")] = None,
) -> None:
    """Print where the local CA certificate is (creating it if needed), its fingerprint,
    and the addresses where phones download it."""
    from cryptography import x509

    from holobazaar.tls import serving
    from holobazaar.tls.certificates import TlsFileError, ensure_local_certificates, fingerprint

    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url, host=host, port=port, http_port=http_port,
                              tls=True)
    try:
        files = ensure_local_certificates(settings.data_dir)
    except TlsFileError as exc:
        typer.echo(f"error: {exc.path}: {exc.problem}", err=True)
        raise typer.Exit(2) from None
    assert files.ca_file is not None
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    typer.echo(f"CA certificate: {files.ca_file.resolve()}")
    typer.echo(f"SHA-256 fingerprint: {fingerprint(ca)}")
    typer.echo(f"valid until: {ca.not_valid_after_utc:%Y-%m-%d}")
    for url in serving.phone_urls(settings, "/tls/ca.pem"):
        typer.echo(f"served at: {url}")
    if settings.trust_port:
        trust = settings.model_copy(update={"port": settings.trust_port, "tls": False})
        for url in serving.phone_urls(trust, "/tls"):
            typer.echo(f"trust page (plain HTTP, before the CA is trusted): {url}")


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
