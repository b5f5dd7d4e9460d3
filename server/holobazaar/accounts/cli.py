"""`holobazaar user ...` and `holobazaar token ...`: manage accounts from the shell. Like
every command that touches stored data, they take --data-dir/--database-url/--broker-url."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from holobazaar.accounts import service
from holobazaar.commands import BrokerUrl, DatabaseUrl, DataDir, build_settings, upgraded_engine

user_app = typer.Typer(no_args_is_help=True,
                       help="Staff accounts (curators, growers, performers, admins).")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (scripts, OSC bridges, QLab).")

Roles = Annotated[list[str], typer.Option("--role", help="admin, curator, performer or "
                                          "grower (repeat for several).")]
Farm = Annotated[str | None, typer.Option("--farm", help="The farm (producer id in the "
                                          "market's market.yaml) a grower grows for.")]
Markets = Annotated[list[str] | None, typer.Option("--market", help="Market id, or '*' for "
                                                   "all (repeat for several).")]


def _settings(data_dir: Path | None, database_url: str | None, broker_url: str | None):
    return build_settings(data_dir=data_dir, database_url=database_url, broker_url=broker_url)


def _engine(data_dir: Path | None, database_url: str | None, broker_url: str | None) -> Engine:
    return upgraded_engine(_settings(data_dir, database_url, broker_url))


def _known_farms(settings, market: list[str] | None) -> dict[str, list[str]] | None:
    """Farm ids per market from the content folder's market.yaml files, to check --farm
    against; None when a market's file is not there to read (the check is then skipped)."""
    import yaml

    found: dict[str, list[str]] = {}
    for m in market or []:
        path = settings.scenes_dir / m / "market.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            typer.echo(f"note: could not read {path}; the farm is not checked", err=True)
            return None
        farms = data.get("farms") if isinstance(data, dict) else None
        found[m] = [f["id"] for f in farms or [] if isinstance(f, dict) and "id" in f]
    return found


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the password, without its line ending (so `echo pw |` works).
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, . _ -).")],
    role: Roles,
    market: Markets = None,
    farm: Farm = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from stdin.")] = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Create a user with roles in markets; prompts for the password. A grower also needs
    --farm: `user create ana --role grower --market M --farm F`."""
    try:
        service.check_name(name)
        settings = _settings(data_dir, database_url, broker_url)
        known = _known_farms(settings, market) if farm else None
        service.check_farm(service.check_grants(role, market or []), farm, known)
        password = service.check_password(_read_password(password_stdin))
        engine = upgraded_engine(settings)
        service.create_user(engine, name, password, role, market or [], farm=farm,
                            known_farms=known)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"created user {name!r}")


@user_app.command("list")
def user_list(data_dir: DataDir = None, database_url: DatabaseUrl = None,
              broker_url: BrokerUrl = None) -> None:
    """List users and their roles."""
    for user, grants in service.list_user_grants(_engine(data_dir, database_url, broker_url)):
        roles = ", ".join(f"{r}@{m}" + (f"/{f}" if f else "") for r, m, f in grants) or "-"
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.name}\t{state}\t{roles}")


@user_app.command("disable")
def user_disable(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None,
                 broker_url: BrokerUrl = None) -> None:
    """Disable a user and end their sessions."""
    try:
        service.set_disabled(_engine(data_dir, database_url, broker_url), name, True)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"disabled user {name!r}")


@user_app.command("enable")
def user_enable(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None,
                broker_url: BrokerUrl = None) -> None:
    """Enable a disabled user."""
    try:
        service.set_disabled(_engine(data_dir, database_url, broker_url), name, False)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"enabled user {name!r}")


@user_app.command("reset-password")
def user_reset_password(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from stdin.")] = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Set a new password (ends the user's sessions)."""
    try:
        password = service.check_password(_read_password(password_stdin))
        service.reset_password(_engine(data_dir, database_url, broker_url), name, password)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"password of {name!r} changed")


@user_app.command("reset-totp")
def user_reset_totp(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None,
                    broker_url: BrokerUrl = None) -> None:
    """Remove a user's second factor (lost phone); ends their sessions. They sign in with
    the password and set it up again on /account/totp."""
    try:
        had = service.reset_totp(_engine(data_dir, database_url, broker_url), name)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"second factor of {name!r} removed" if had
               else f"{name!r} had no second factor")


@user_app.command("throttled")
def user_throttled(data_dir: DataDir = None, database_url: DatabaseUrl = None,
                   broker_url: BrokerUrl = None) -> None:
    """List sign-ins held back now: pairs, accounts, addresses over their limits."""
    settings = _settings(data_dir, database_url, broker_url)
    entries = service.throttled(_engine(data_dir, database_url, broker_url),
                                service.ThrottlePolicy.from_settings(settings))
    typer.echo("kind\taccount\taddress\tfailures\tuntil")
    for e in entries:
        typer.echo(f"{e.kind}\t{e.account or '-'}\t{e.address or '-'}\t{e.failures}"
                   f"\t{e.until:%Y-%m-%d %H:%M:%S}")


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str | None, typer.Argument(help="Account to unlock [every account].")] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="Only failures from this address (or IPv6 /64).")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Forget recent failed sign-ins (of an account, an address, a pair, or all), so
    their back-off ends now."""
    count = service.unlock(_engine(data_dir, database_url, broker_url), name, address)
    what = " from ".join(x for x in (name, address) if x) or "every sign-in"
    typer.echo(f"unlocked {what}: {count} failure(s) forgotten")


def _change(name: str, role: list[str], market: list[str] | None, grant: bool,
            data_dir: Path | None, database_url: str | None, broker_url: str | None,
            farm: str | None = None) -> None:
    try:
        settings = _settings(data_dir, database_url, broker_url)
        known = _known_farms(settings, market) if grant and farm else None
        grants = service.change_grants(upgraded_engine(settings), name, role,
                                       market or [], grant, farm=farm, known_farms=known)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"{name}: " + (", ".join(f"{r}@{m}" for r, m in grants) or "no roles"))


@user_app.command("grant")
def user_grant(name: str, role: Roles, market: Markets = None, farm: Farm = None,
               data_dir: DataDir = None, database_url: DatabaseUrl = None,
               broker_url: BrokerUrl = None) -> None:
    """Give a user roles in markets (grower: with --farm)."""
    _change(name, role, market, True, data_dir, database_url, broker_url, farm)


@user_app.command("revoke")
def user_revoke(name: str, role: Roles, market: Markets = None, data_dir: DataDir = None,
                database_url: DatabaseUrl = None, broker_url: BrokerUrl = None) -> None:
    """Take roles in markets away from a user."""
    _change(name, role, market, False, data_dir, database_url, broker_url)


@token_app.command("create")
def token_create(
    role: Roles,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'qlab booth'.")],
    market: Markets = None,
    expires: Annotated[str | None, typer.Option("--expires",
                                                help="Lifetime: 90m, 12h, 30d, 2w.")] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    try:
        lifetime = service.parse_duration(expires) if expires else None
        service.check_grants(role, market or [])
        token, row = service.create_token(_engine(data_dir, database_url, broker_url), name,
                                          role, market or [], lifetime)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"token {row.id} {row.name!r} ({row.roles} @ {row.markets}), "
               f"expires {_when(row.expires_at)}. Shown once; store it now:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(data_dir: DataDir = None, database_url: DatabaseUrl = None,
               broker_url: BrokerUrl = None) -> None:
    """List tokens (never the secrets)."""
    typer.echo("id\tname\troles\tmarkets\texpires\tlast used\trevoked")
    for row in service.list_tokens(_engine(data_dir, database_url, broker_url)):
        typer.echo(f"{row.id}\t{row.name}\t{row.roles}\t{row.markets}\t{_when(row.expires_at)}"
                   f"\t{_when(row.last_used_at)}\t{_when(row.revoked_at)}")


@token_app.command("revoke")
def token_revoke(id_or_name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None,
                 broker_url: BrokerUrl = None) -> None:
    """Revoke a token by id or name. With a Redis broker, the running nodes forget it at
    once (else within accounts.service.TOKEN_CACHE_SECONDS)."""
    from holobazaar.cluster import REDIS_SCHEMES, notify_from_outside

    settings = _settings(data_dir, database_url, broker_url)
    try:
        row = service.revoke_token(upgraded_engine(settings), id_or_name)
    except service.AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"revoked token {row.id} {row.name!r}")
    if settings.broker_url.startswith(REDIS_SCHEMES) and not notify_from_outside(
            settings.broker_url, settings.redis_prefix, "tokens", {"id": row.id}):
        typer.echo(f"note: the running servers could not be told; they stop accepting the "
                   f"token within {service.TOKEN_CACHE_SECONDS:g} s", err=True)
