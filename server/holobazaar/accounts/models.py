"""Accounts tables: users and their (role, market) grants, API tokens, server-side
sessions and login attempts (for throttling). Secrets are stored only as hashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

Role = Literal["admin", "curator", "performer", "grower"]
ROLES: tuple[str, ...] = ("admin", "curator", "performer", "grower")
# A grower's grant covers one farm (producer) of one market: their items, profile, stories.
FARM_ROLES: tuple[str, ...] = ("grower",)
ALL_MARKETS = "*"
# Same alphabet as scene identifiers (scenes/models.py Ident), plus '*' for every market.
MARKET_PATTERN = r"^([a-z0-9][a-z0-9-]{0,62}|\*)$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
FARM_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"  # a farm id (scenes/models.py Ident)


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    disabled: bool = False
    # Set when the password was given to them (an invitation, an admin's reset): the pages
    # ask for a password of their own before anything else (docs/studio.md, Staff).
    must_change_password: bool = False
    created_at: datetime = Field(sa_column=_ts())
    # TOTP second factor (RFC 6238): the base32 secret once enrolment is confirmed, the
    # one being enrolled, and the last time step used (a code works once).
    totp_secret: str | None = Field(default=None, max_length=64, repr=False)
    totp_pending: str | None = Field(default=None, max_length=64, repr=False)
    totp_enabled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    totp_last_step: int | None = Field(default=None, repr=False)


class UserRole(SQLModel, table=True):
    __tablename__ = "user_role"
    __table_args__ = (UniqueConstraint("user_id", "role", "market"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    role: str = Field(max_length=16)
    market: str = Field(max_length=64)
    farm: str | None = Field(default=None, max_length=64)  # a grower's farm; NULL otherwise


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    # SHA-256 of the token: tokens carry 256 random bits, so a slow hash adds nothing.
    token_hash: str = Field(max_length=64, unique=True)
    roles: str = Field(max_length=120, description="Space-separated roles.")
    markets: str = Field(max_length=1000, description="Space-separated markets or '*'.")
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AuthSession(SQLModel, table=True):
    __tablename__ = "auth_session"

    # SHA-256 of the cookie value: a database leak does not hand out live sessions.
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class LoginAttempt(SQLModel, table=True):
    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_ts())
    account: str = Field(max_length=64, index=True)
    address: str = Field(max_length=64, index=True)
    ok: bool = False


class LoginChallenge(SQLModel, table=True):
    """A sign-in whose password checked out, waiting for the second factor."""

    __tablename__ = "login_challenge"

    # SHA-256 of the challenge cookie.
    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    address: str = Field(max_length=64)
    tries: int = 0
    expires_at: datetime = Field(sa_column=_ts())


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user (kind 'user') or an API token (kind 'token')."""

    kind: Literal["user", "token"]
    id: int
    name: str
    grants: frozenset[tuple[str, str]]  # (role, market or '*')
    session_csrf: str | None = field(default=None, repr=False)
    farms: frozenset[tuple[str, str]] = frozenset()  # (market, farm) of grower grants
    must_change_password: bool = False  # a signed-in user still on a temporary password

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def roles(self) -> set[str]:
        return {role for role, _ in self.grants}

    @property
    def markets(self) -> set[str]:
        return {market for _, market in self.grants}

    def allows(self, role: str, market: str | None) -> bool:
        """admin implies every role in every market; other grants are per market, and a
        route without a market needs the role in some market."""
        for granted, where in self.grants:
            if granted == "admin":
                return True
            if granted == role and (market is None or where in (ALL_MARKETS, market)):
                return True
        return False

    def farm_of(self, market: str) -> str | None:
        """The farm this principal grows for in `market` (None: not a grower there)."""
        for where, farm in sorted(self.farms):
            if where == market:
                return farm
        return None

    def may_touch_farm(self, market: str, farm: str | None) -> bool:
        """Curators (and admins) touch every farm's data of their market; a grower only
        their own farm's; anyone else none."""
        if self.allows("curator", market):
            return True
        own = self.farm_of(market)
        return own is not None and farm == own and self.allows("grower", market)

    def allows_any(self, roles: tuple[str, ...], market: str | None) -> bool:
        if not roles:
            return True
        return any(self.allows(role, market) for role in roles)


class PreviewPassKey(SQLModel, table=True):
    """The key preview passes are signed with (accounts/preview_links.py): one row, made on
    first use; every node of a cluster reads the same one, so a pass works on any node."""

    __tablename__ = "preview_pass_key"

    id: int = Field(default=1, primary_key=True)
    key: str = Field(max_length=64)  # 32 random bytes, hex
    created_at: datetime = Field(sa_column=_ts())
