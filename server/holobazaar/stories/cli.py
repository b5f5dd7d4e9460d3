"""`holobazaar import stories DIR`, `holobazaar export stories DIR`,
`holobazaar import recipes FILE.jsonld` (wired into holobazaar.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from holobazaar.commands import (
    BrokerUrl,
    DatabaseUrl,
    DataDir,
    build_settings,
    content_loader,
    upgraded_engine,
)

if TYPE_CHECKING:
    from holobazaar.stories.schema import Document

import_app = typer.Typer(no_args_is_help=True, help="Import stories and recipes.")
export_app = typer.Typer(no_args_is_help=True, help="Export stories and recipes.")

ContentDir = Annotated[Path | None, typer.Option(
    "--content", help="Content folder whose scenes/ define the markets [.].")]


def _engine(data_dir, database_url, broker_url, content=None):
    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url, content_dir=content)
    return settings, upgraded_engine(settings)


def _markets(ctx: typer.Context, settings):
    """Producers and SKUs from the content's scene files, to check links (None: no
    scenes there, links are not checked)."""
    from holobazaar.stories.files import market_facts

    if not settings.scenes_dir.is_dir():
        return None
    content = content_loader(ctx)(settings.content_dir)
    return market_facts(content) if content.markets else None


@import_app.command("stories")
def import_stories(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder of Markdown files.")],
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
    content: ContentDir = None,
) -> None:
    """Import (create or update, keyed by slug) every *.md story and recipe file. Good
    files are imported even when others are bad; each bad one is reported (exit 1)."""
    from holobazaar.stories import files, translations

    if not directory.is_dir():
        typer.echo(f"error: {directory}: not a folder", err=True)
        raise typer.Exit(2)
    settings, engine = _engine(data_dir, database_url, broker_url, content)
    try:
        report = files.import_directory(engine, directory, "import:cli",
                                        max_bytes=settings.story_max_bytes,
                                        markets=_markets(ctx, settings))
        # Their translations (translations/<lang>/<slug>.md), after the documents.
        translated = translations.import_directory(engine, directory, "import:cli",
                                                   only_new=False)
    finally:
        engine.dispose()
    for problem in [*report.problems, *translated.problems]:
        typer.echo(str(problem), err=True)
    typer.echo(f"imported {len(report.imported)}, unchanged {len(report.unchanged)}, "
               f"failed {len({p.file for p in report.problems})}")
    if translated.imported or translated.unchanged or translated.problems:
        typer.echo(f"translations: imported {len(translated.imported)}, unchanged "
                   f"{len(translated.unchanged)}, failed "
                   f"{len({p.file for p in translated.problems})}")
    if report.problems or translated.problems:
        raise typer.Exit(1)


@export_app.command("stories")
def export_stories(
    directory: Annotated[Path, typer.Argument(help="Folder to write the files to.")],
    market: Annotated[str | None, typer.Option(help="Only this market.")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Write every story and recipe (any status) as Markdown + front matter files."""
    from holobazaar.stories import files, service, translations

    _, engine = _engine(data_dir, database_url, broker_url)
    docs: list[Document] = []
    try:
        for kind in service.ROWS:
            offset = 0
            while True:
                _, page = service.list_documents(engine, kind, market=market, limit=500,
                                                 offset=offset)
                docs.extend(s.doc for s in page)
                offset += 500
                if len(page) < 500:
                    break
        written = translations.export_directory(engine, directory, market)
    finally:
        engine.dispose()
    written += files.export_directory(docs, directory)
    typer.echo(f"wrote {len(written)} file(s) to {directory}")


@import_app.command("recipes")
def import_recipes(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON-LD: a Recipe, an array or an @graph.")],
    market: Annotated[str, typer.Option(help="Market the recipes belong to.")],
    status: Annotated[str, typer.Option(help="draft, review or published.")] = "draft",
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
    content: ContentDir = None,
) -> None:
    """Import schema.org Recipes; ingredients are linked to the market's items by name."""
    from holobazaar.stories import jsonld, service

    if status not in ("draft", "review", "published"):
        typer.echo(f"error: --status: {status!r} is not draft, review or published", err=True)
        raise typer.Exit(2)
    settings, engine = _engine(data_dir, database_url, broker_url, content)
    try:
        if file.stat().st_size > settings.story_max_bytes * 16:
            typer.echo(f"error: {file}: larger than {settings.story_max_bytes * 16} bytes",
                       err=True)
            raise typer.Exit(1)
        items = _seed_items(ctx, settings, market)
        docs = jsonld.parse(file.read_bytes(), market, items, status)
        for doc in docs:
            saved = service.save(engine, doc, "import:cli", action="import", origin="import")
            typer.echo(f"{'imported' if saved.changed else 'unchanged'} {doc.slug} "
                       f"(revision {saved.revision})")
    except (OSError, jsonld.JsonLdError, service.Conflict) as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _seed_items(ctx: typer.Context, settings, market: str):
    from holobazaar.inventory import service as inventory

    if not settings.scenes_dir.is_dir():
        return None
    content = content_loader(ctx)(settings.content_dir)
    found = content.markets.get(market)
    if found is None:
        typer.echo(f"error: --market: no market {market!r} in {settings.content_dir}",
                   err=True)
        raise typer.Exit(2)
    from holobazaar import db

    engine = db.make_engine(settings.resolved_database_url)
    try:
        stored = inventory.load_items(engine, market)
    finally:
        engine.dispose()
    return stored or found.seed_items()
