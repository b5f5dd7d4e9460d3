"""Accounts as plain functions over the database: users, grants, tokens, sessions, login
with throttling. Routes, pages and the CLI call these; nothing here knows about HTTP."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from holobazaar.accounts.models import (
    ALL_MARKETS,
    MARKET_PATTERN,
    ROLES,
    USERNAME_PATTERN,
    ApiToken,
    AuthSession,
    LoginAttempt,
    Principal,
    User,
    UserRole,
)
from holobazaar.audit import service as audit
from holobazaar.db import session_scope

TOKEN_PREFIX = "hbt_"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # Argon2 would take anything; a cap stops multi-megabyte "passwords".
_hasher = PasswordHasher()
_PG_LOGIN_LOCK = 0x4C6F6769  # "Logi": any constant distinct from the audit log's


class AccountError(ValueError):
    """A request the accounts service refuses (bad name, unknown user, ...)."""


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ThrottlePolicy:
    account_failures: int = 5
    address_failures: int = 20
    window: float = 900.0
    backoff: float = 1.0


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# ---- validation -----------------------------------------------------------------------


def check_name(name: str) -> str:
    if not re.fullmatch(USERNAME_PATTERN, name):
        raise AccountError("user names are 1-63 characters: a-z, 0-9, '.', '_', '-', "
                           "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def check_grants(roles: Iterable[str], markets: Iterable[str]) -> list[tuple[str, str]]:
    roles, markets = list(dict.fromkeys(roles)), list(dict.fromkeys(markets))
    if not roles:
        raise AccountError("give at least one --role")
    for role in roles:
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    for market in markets:
        if not re.fullmatch(MARKET_PATTERN, market):
            raise AccountError(f"bad market {market!r}: a market id or '*' for all markets")
    grants: list[tuple[str, str]] = []
    for role in roles:
        if role == "admin":
            grants.append(("admin", ALL_MARKETS))  # admin is global by definition
        elif not markets:
            raise AccountError(f"role {role!r} needs --market (a market id, or '*')")
        else:
            grants.extend((role, market) for market in markets)
    return grants


# ---- passwords ------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not the user exists: unknown users verify a dummy hash."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password[:MAX_PASSWORD]) and bool(stored)
    except (VerificationError, InvalidHashError):
        return False


# ---- users ----------------------------------------------------------------------------


def get_user(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise AccountError(f"no user {name!r}")
    return user


def user_grants(session: Session, user_id: int) -> list[tuple[str, str]]:
    rows = session.exec(select(UserRole).where(UserRole.user_id == user_id)).all()
    return sorted((row.role, row.market) for row in rows)


def create_user(engine: Engine, name: str, password: str, roles: Iterable[str],
                markets: Iterable[str], actor: str = "cli") -> User:
    check_name(name)
    grants = check_grants(roles, markets)
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        if session.exec(select(User).where(User.name == name)).first() is not None:
            raise AccountError(f"user {name!r} exists")
        user = User(name=name, password_hash=password_hash, created_at=now())
        session.add(user)
        session.flush()
        assert user.id is not None
        for role, market in grants:
            session.add(UserRole(user_id=user.id, role=role, market=market))
        audit.append(session, actor, "user.create", None,
                     {"user": name, "grants": [list(g) for g in grants]})
        return user


def list_users(engine: Engine) -> list[tuple[User, list[tuple[str, str]]]]:
    with session_scope(engine) as session:
        users = session.exec(select(User).order_by(User.name)).all()
        return [(u, user_grants(session, u.id)) for u in users if u.id is not None]


def set_disabled(engine: Engine, name: str, disabled: bool = True, actor: str = "cli") -> None:
    with session_scope(engine) as session:
        user = get_user(session, name)
        user.disabled = disabled
        session.add(user)
        if disabled:
            session.exec(delete(AuthSession).where(AuthSession.user_id == user.id))
        audit.append(session, actor, "user.disable" if disabled else "user.enable", None,
                     {"user": name})


def reset_password(engine: Engine, name: str, password: str, actor: str = "cli") -> None:
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        user = get_user(session, name)
        user.password_hash = password_hash
        session.add(user)
        # Whoever knew the old password may hold a session: end them all.
        session.exec(delete(AuthSession).where(AuthSession.user_id == user.id))
        audit.append(session, actor, "user.reset_password", None, {"user": name})


def change_grants(engine: Engine, name: str, roles: Iterable[str], markets: Iterable[str],
                  grant: bool, actor: str = "cli") -> list[tuple[str, str]]:
    grants = check_grants(roles, markets)
    with session_scope(engine) as session:
        user = get_user(session, name)
        existing = {(r.role, r.market): r for r in session.exec(
            select(UserRole).where(UserRole.user_id == user.id))}
        for key in grants:
            if grant and key not in existing:
                session.add(UserRole(user_id=user.id, role=key[0], market=key[1]))
            elif not grant and key in existing:
                session.delete(existing[key])
        for role, market in grants:
            audit.append(session, actor, "role.grant" if grant else "role.revoke",
                         None if market == ALL_MARKETS else market,
                         {"user": name, "role": role, "market": market})
        session.flush()
        return user_grants(session, user.id)  # type: ignore[arg-type]


# ---- login, throttling, sessions ------------------------------------------------------


def _failures(session: Session, column, value: str, since: datetime) -> tuple[int, datetime]:
    count, last = session.exec(
        select(func.count(), func.max(LoginAttempt.at))
        .where(column == value, LoginAttempt.at >= since, LoginAttempt.ok == False)  # noqa: E712
    ).one()
    return int(count), _aware(last) if last is not None else since


def throttle_wait(session: Session, account: str, address: str, policy: ThrottlePolicy,
                  moment: datetime) -> float:
    """Seconds to wait before the next attempt: after the allowed failures within the
    window, each further failure doubles the wait (capped at the window)."""
    since = moment - timedelta(seconds=policy.window)
    wait = 0.0
    for column, value, allowed in ((LoginAttempt.account, account, policy.account_failures),
                                   (LoginAttempt.address, address, policy.address_failures)):
        count, last = _failures(session, column, value, since)
        if count >= allowed:
            delay = min(policy.backoff * 2 ** (count - allowed), policy.window)
            wait = max(wait, (last + timedelta(seconds=delay) - moment).total_seconds())
    return wait


def _serialize_logins(session: Session) -> None:
    """Hold the write lock from the throttle check to recording the attempt, so parallel
    attempts cannot all pass the check before any of them is counted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOGIN_LOCK})
    elif dialect == "sqlite":
        session.execute(text("UPDATE login_attempt SET id = id WHERE 0"))


def login(engine: Engine, name: str, password: str, address: str, policy: ThrottlePolicy,
          ttl: float) -> tuple[str, AuthSession]:
    """Check a password and open a new session (a fresh id every time, so a session id
    planted before login is never promoted). Returns (cookie value, session row). Raises
    Throttled, or AccountError with one message for every kind of failure."""
    account = name.strip().lower()[:64]
    address = address[:64]
    moment = now()
    with session_scope(engine) as session:
        _serialize_logins(session)
        wait = throttle_wait(session, account, address, policy, moment)
        if wait > 0:
            audit.append(session, "anonymous", "auth.login_throttled", None,
                         {"user": account, "address": address})
        else:
            # Counted as a failure until the password checks out, so a burst of parallel
            # guesses is throttled without waiting for their (slow) verifications.
            attempt = LoginAttempt(at=moment, account=account, address=address, ok=False)
            session.add(attempt)
            # Old attempts only matter within the window; prune them as we go.
            session.exec(delete(LoginAttempt).where(
                col(LoginAttempt.at) < moment - timedelta(seconds=policy.window)))
        user = session.exec(select(User).where(User.name == account)).first()
    if wait > 0:
        raise Throttled(wait)
    ok = verify_password(user.password_hash if user else None, password)
    ok = ok and user is not None and not user.disabled
    with session_scope(engine) as session:
        if not ok or user is None:
            audit.append(session, "anonymous", "auth.login_failed", None,
                         {"user": account, "address": address})
            row = None
        else:
            # Success: this account's failures are forgiven (other accounts' failures from
            # the same address still count for the address).
            session.exec(delete(LoginAttempt).where(
                LoginAttempt.account == account, LoginAttempt.ok == False))  # noqa: E712
            session.add(LoginAttempt(at=moment, account=account, address=address, ok=True))
            cookie = secrets.token_urlsafe(32)
            row = AuthSession(id=sha256_hex(cookie), user_id=user.id,
                              csrf_token=secrets.token_urlsafe(32), created_at=moment,
                              expires_at=moment + timedelta(seconds=ttl))
            session.add(row)
            audit.append(session, f"user:{user.name}", "auth.login", None,
                         {"address": address})
    # Raised after the commit: the failed attempt must count even though login fails.
    if row is None:
        raise AccountError("wrong user name or password")
    return cookie, row


def logout(engine: Engine, cookie: str) -> None:
    with session_scope(engine) as session:
        session.exec(delete(AuthSession).where(AuthSession.id == sha256_hex(cookie)))


def principal_for_session(engine: Engine, cookie: str) -> Principal | None:
    with session_scope(engine) as session:
        row = session.get(AuthSession, sha256_hex(cookie))
        if row is None:
            return None
        if _aware(row.expires_at) <= now():
            session.delete(row)
            return None
        user = session.get(User, row.user_id)
        if user is None or user.disabled or user.id is None:
            return None
        return Principal("user", user.id, user.name, frozenset(user_grants(session, user.id)),
                         session_csrf=row.csrf_token)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# ---- tokens ---------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d{1,6})([mhdw])", text.strip())
    if not match:
        raise AccountError(f"bad duration {text!r}: use e.g. 90m, 12h, 30d, 2w")
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise AccountError("a duration must be positive")
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})


def create_token(engine: Engine, name: str, roles: Iterable[str], markets: Iterable[str],
                 expires: timedelta | None, actor: str = "cli") -> tuple[str, ApiToken]:
    """Returns the token (shown once, never stored) and its row."""
    name = name.strip()
    if not 1 <= len(name) <= 120 or not name.isprintable():
        raise AccountError("token names are 1-120 printable characters")
    grants = check_grants(roles, markets)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    moment = now()
    with session_scope(engine) as session:
        if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
            raise AccountError(f"a token named {name!r} exists")
        row = ApiToken(name=name, token_hash=sha256_hex(token),
                       roles=" ".join(sorted({r for r, _ in grants})),
                       markets=" ".join(sorted({m for _, m in grants})),
                       created_at=moment, expires_at=moment + expires if expires else None)
        session.add(row)
        audit.append(session, actor, "token.create", None,
                     {"token": name, "grants": [list(g) for g in grants],
                      "expires_at": row.expires_at.isoformat() if row.expires_at else None})
        return token, row


def list_tokens(engine: Engine) -> list[ApiToken]:
    with session_scope(engine) as session:
        return list(session.exec(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(engine: Engine, id_or_name: str, actor: str = "cli") -> ApiToken:
    with session_scope(engine) as session:
        row = None
        if id_or_name.isdigit():
            row = session.get(ApiToken, int(id_or_name))
        if row is None:
            row = session.exec(select(ApiToken).where(ApiToken.name == id_or_name)).first()
        if row is None:
            raise AccountError(f"no token {id_or_name!r}")
        if row.revoked_at is None:
            row.revoked_at = now()
            session.add(row)
            audit.append(session, actor, "token.revoke", None, {"token": row.name})
        return row


def token_grants(row: ApiToken) -> frozenset[tuple[str, str]]:
    markets = row.markets.split() or [ALL_MARKETS]
    return frozenset((role, ALL_MARKETS if role == "admin" else market)
                     for role in row.roles.split() for market in markets)


def principal_for_token(engine: Engine, token: str) -> Principal | None:
    """The token's principal, or None if unknown, revoked or expired. Records its use
    (to the minute: a busy script does not turn every read into a database write)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    moment = now()
    with session_scope(engine) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == sha256_hex(token))
                           ).first()
        if row is None or row.id is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and _aware(row.expires_at) <= moment:
            return None
        if row.last_used_at is None or moment - _aware(row.last_used_at) > timedelta(minutes=1):
            row.last_used_at = moment
            session.add(row)
        return Principal("token", row.id, row.name, token_grants(row))


def record_write(engine: Engine, principal: Principal, request: str, market: str | None,
                 allowed: bool) -> None:
    """Audit a write request: every one made with a token, and every refused one."""
    action = "token.write" if allowed else "auth.forbidden"
    with session_scope(engine) as session:
        audit.append(session, principal.actor, action, market, {"request": request[:300]})
