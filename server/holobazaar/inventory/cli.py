"""`holobazaar inventory ...` (webhook secret, file import) and `holobazaar simulate
glitch` (the drill, run against a running server through its API)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from holobazaar.commands import (
    BrokerUrl,
    ContentDir,
    DatabaseUrl,
    DataDir,
    build_settings,
    content_loader,
    upgraded_engine,
)

inventory_app = typer.Typer(no_args_is_help=True, help="Inventory feeds.")
simulate_app = typer.Typer(no_args_is_help=True, help="Drills against a running server.")

Market = Annotated[str, typer.Option("--market", help="Market id.")]


def _market_currency(ctx: typer.Context, settings, market: str) -> str:
    content = content_loader(ctx)(settings.content_dir)
    found = content.markets.get(market)
    if found is None:
        typer.echo(f"error: --market: no market {market!r} in {settings.content_dir}", err=True)
        raise typer.Exit(2)
    return found.market.market.currency


@inventory_app.command("secret")
def secret(market: Market, data_dir: DataDir = None, database_url: DatabaseUrl = None,
           broker_url: BrokerUrl = None) -> None:
    """Generate the market's webhook secret (replacing any) and print it once."""
    from holobazaar.inventory.feed_routes import new_secret

    settings = build_settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)
    typer.echo(new_secret(upgraded_engine(settings), market, "cli"))


@inventory_app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="FILE.csv or FILE.json", exists=True,
                                         dir_okay=False, readable=True)],
    market: Market,
    snapshot: Annotated[str | None, typer.Option(
        "--snapshot", help="Treat as a full snapshot; items not listed become sold_out, "
        "are removed, or are kept (sold_out|remove|keep).")] = None,
    content: ContentDir = None, data_dir: DataDir = None, database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Apply a CSV or JSON file of item events (a running server picks the change up
    within one sweep interval). Bad rows are reported with their line; good rows apply."""
    from holobazaar.inventory import batches, feeds

    settings = build_settings(content_dir=content, data_dir=data_dir, database_url=database_url,
                         broker_url=broker_url)
    if snapshot not in (None, *batches.DISAPPEAR_RULES):
        typer.echo(f"error: --snapshot: {snapshot!r} is not sold_out, remove or keep", err=True)
        raise typer.Exit(2)
    suffix = file.suffix.lower().lstrip(".")
    if suffix not in ("csv", "json"):
        typer.echo(f"error: {file}: the name must end in .csv or .json", err=True)
        raise typer.Exit(2)
    currency = _market_currency(ctx, settings, market)
    body = file.read_bytes()
    try:
        rows = feeds.parse(body, suffix)
    except feeds.FeedFormatError as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(1) from None
    result = batches.apply_batch(
        upgraded_engine(settings), market, rows, source="file", body_digest=feeds.body_hash(body),
        key=None, policy=batches.Policy(settings.hold_price_change, settings.breaker_share,
                                      settings.breaker_min),
        currency=currency, snapshot_rule=snapshot, actor="cli")
    for row in result.response["rejected"]:
        typer.echo(f"{file}:{row['line']}: {row['sku'] or '-'}: {row['error']}", err=True)
    summary = {k: v for k, v in result.response.items() if k != "rejected"}
    typer.echo(json.dumps({**summary, "rejected": len(result.response["rejected"])}))
    if result.response["rejected"]:
        raise typer.Exit(1)


@simulate_app.command("glitch")
def glitch(
    market: Market,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    displays: Annotated[int | None, typer.Option("--displays",
                                                 help="How many displays [a third].")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Server [HOLOBAZAAR_URL or "
                                            "http://127.0.0.1:8000].")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Admin API token "
                                              "[HOLOBAZAAR_TOKEN].")] = None,
) -> None:
    """Scramble some displays of a running server (wrong prices, swapped items, stale
    stock) so operators can watch the reconciler detect and repair them."""
    import httpx

    base = url or os.environ.get("HOLOBAZAAR_URL") or "http://127.0.0.1:8000"
    token = token or os.environ.get("HOLOBAZAAR_TOKEN")
    if not token:
        typer.echo("error: --token (or HOLOBAZAAR_TOKEN) is required: an admin API token",
                   err=True)
        raise typer.Exit(2)
    try:
        response = httpx.post(f"{base.rstrip('/')}/api/v1/reconcile/{market}/drill",
                              json={"seed": seed, "displays": displays},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {base}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        typer.echo(f"error: {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)
    for item in response.json()["scrambled"]:
        caught = ": caught by the publish guard" if item.get("guarded") else ""
        typer.echo(f"scrambled {item['display']} ({item['mode']}){caught}")
