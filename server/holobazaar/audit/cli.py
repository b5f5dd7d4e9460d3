"""`holobazaar audit verify` and `holobazaar audit export --since`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from holobazaar.commands import BrokerUrl, DatabaseUrl, DataDir, build_settings, upgraded_engine

audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")



def _engine(data_dir, database_url, broker_url):
    return upgraded_engine(build_settings(data_dir=data_dir, database_url=database_url,
                                          broker_url=broker_url))


@audit_app.command("verify")
def verify(
    public_url: Annotated[str | None, typer.Option(
        "--public", help="Check this server's public history from the outside (its base "
        "URL), against its signed heads; nothing local is read.")] = None,
    market: Annotated[str | None, typer.Option(
        "--market", help="With --public: only this market [all].")] = None,
    items: Annotated[bool, typer.Option(
        "--items/--no-items", help="With --public: also check each item's history route "
        "against the chain (one request per item) [--items].")] = True,
    witness: Annotated[list[str] | None, typer.Option(
        "--witness", help="Also compare with the heads this witness kept (repeatable) "
        "[HOLOBAZAAR_AUDIT_WITNESSES].")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None,
    broker_url: BrokerUrl = None,
) -> None:
    """Check the chain, the public histories and the signed heads (exit 1 on a problem).

    Default: this server's audit log, public chains and signed heads.

    --witness URL: also the heads a witness kept of this server.

    --public URL: another server's public history against its signed heads."""
    if public_url is not None:
        _verify_public(public_url, market, items)
        return
    from sqlmodel import select

    from holobazaar.audit import heads, service
    from holobazaar.audit.models import MarketKey
    from holobazaar.db import session_scope

    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url)
    urls = list(witness or []) or [u.strip() for u in settings.audit_witnesses.split(",")
                                   if u.strip()]
    with session_scope(_engine(data_dir, database_url, broker_url)) as session:
        extra, problems = [], []
        if urls:
            from holobazaar.audit.verifier import witness_copies

            keys = {k.market: k.public_key for k in session.exec(select(MarketKey))}
            for url in urls:
                found, trouble = witness_copies(url, keys, settings.witness_timeout)
                extra += found
                problems += trouble
        problems = heads.verify_local(session, extra) + problems
        count = service.count(session)
        signed = len(extra) + len(heads.stored_heads(session)[1])
    if problems:
        typer.echo(f"broken: {problems[0]}", err=True)
        for line in problems[1:]:
            typer.echo(f"also: {line}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {count} entries, chain intact; {signed} signed head(s) reproduced"
               + (f", {len(urls)} witness(es) agree" if urls else ""))


def _verify_public(url: str, market: str | None, items: bool) -> None:
    from holobazaar.audit.verifier import verify_public

    report = verify_public(url, market, check_items=items)
    for line in report.ok:
        typer.echo(f"ok: {line}")
    for line in report.problems:
        typer.echo(f"broken: {line}", err=True)
    if report.problems or not report.ok:
        raise typer.Exit(1)


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


witness_app = typer.Typer(no_args_is_help=True, help="Witness other market servers: keep "
                          "their signed heads, catch a rewritten history.")


@witness_app.command("add")
def witness_add(
    url: Annotated[str, typer.Argument(help="Base URL of the server to witness.")],
    check: Annotated[bool, typer.Option("--check/--no-check", help="Fetch its heads once "
                                        "first; refuse an address that does not answer "
                                        "them.")] = True,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Register a server: the running server polls its signed heads every
    HOLOBAZAAR_WITNESS_INTERVAL seconds and keeps them."""
    from holobazaar.audit import witness
    from holobazaar.audit.verifier import Unusable, get_json

    try:
        base = witness.normalise_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if check:
        import httpx

        with httpx.Client(timeout=10, follow_redirects=False) as client:
            try:
                data = get_json(client, f"{base}/api/v1/audit/heads")
            except Unusable as exc:
                typer.echo(f"error: {exc}; not added (--no-check adds it anyway)", err=True)
                raise typer.Exit(1) from None
        if not isinstance(data, dict) or not isinstance(data.get("heads"), list):
            typer.echo(f"error: {base} does not publish signed heads; not added", err=True)
            raise typer.Exit(1)
    added = witness.add(_engine(data_dir, database_url, broker_url), base)
    typer.echo(f"witnessing {added.url}")


@witness_app.command("remove")
def witness_remove(
    url: Annotated[str, typer.Argument(help="Base URL given to `witness add`.")],
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Stop witnessing a server (the heads kept of it are deleted)."""
    from holobazaar.audit import witness

    try:
        removed = witness.remove(_engine(data_dir, database_url, broker_url), url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not removed:
        typer.echo(f"error: not witnessing {url}", err=True)
        raise typer.Exit(1)
    typer.echo(f"no longer witnessing {url}")


@witness_app.command("list")
def witness_list(data_dir: DataDir = None, database_url: DatabaseUrl = None,
                 broker_url: BrokerUrl = None) -> None:
    """The witnessed servers as JSON (what GET /api/v1/witness answers)."""
    import json

    from holobazaar.audit.witness import WitnessService

    service = WitnessService(_engine(data_dir, database_url, broker_url), 0, 0)
    typer.echo(json.dumps(service.listing(), indent=2))
