"""Accounts as plain functions over the database: users, grants, tokens, sessions, login
with throttling. Routes, pages and the CLI call these; nothing here knows about HTTP."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from holobazaar import db
from holobazaar.accounts import totp
from holobazaar.accounts.addresses import limit_key
from holobazaar.accounts.models import (
    ALL_MARKETS,
    FARM_PATTERN,
    FARM_ROLES,
    MARKET_PATTERN,
    ROLES,
    USERNAME_PATTERN,
    ApiToken,
    AuthSession,
    LoginAttempt,
    LoginChallenge,
    Principal,
    User,
    UserRole,
)
from holobazaar.audit import service as audit
from holobazaar.db import as_utc, session_scope

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


class SecondFactorDue(Exception):
    """The password was right; the account has TOTP: ask for the code (login_code)."""

    def __init__(self, challenge: str) -> None:
        super().__init__("second factor due")
        self.challenge = challenge


class ChallengeExpired(AccountError):
    """The second-factor step is unknown, expired or used up: sign in again."""

    def __init__(self) -> None:
        super().__init__("the sign-in expired; enter your password again")


CHALLENGE_TTL = timedelta(minutes=5)
MAX_CODE_TRIES = 5


@dataclass(frozen=True)
class ThrottlePolicy:
    """Sign-in throttling (docs/accounts.md): failures within `window` per (account,
    address) pair; per account, per address and overall only for pairs not known."""

    pair_failures: int = 5
    account_failures: int = 20
    address_failures: int = 20
    global_failures: int = 200
    window: float = 900.0
    backoff: float = 1.0
    known_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> ThrottlePolicy:
        return cls(settings.login_pair_failures, settings.login_account_failures,
                   settings.login_address_failures, settings.login_global_failures,
                   settings.login_window, settings.login_backoff, settings.login_known_days)


def now() -> datetime:
    return datetime.now(UTC)


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


def check_farm(grants: list[tuple[str, str]], farm: str | None,
               known_farms: Mapping[str, Iterable[str]] | None = None) -> str | None:
    """The farm of a grower grant: required with the grower role, which then covers one
    market (not '*'); refused without it. `known_farms` (market -> farm ids), when the
    caller knows the markets' content, also checks the farm exists there."""
    farm = (farm or "").strip() or None
    farm_grants = [(role, market) for role, market in grants if role in FARM_ROLES]
    if not farm_grants:
        if farm is not None:
            raise AccountError("--farm goes with the grower role only")
        return None
    if farm is None:
        raise AccountError("the grower role needs --farm (the farm's id in the market)")
    if not re.fullmatch(FARM_PATTERN, farm):
        raise AccountError(f"bad farm {farm!r}: a farm id (a-z, 0-9, '-')")
    markets = {market for _, market in farm_grants}
    if len(markets) != 1 or ALL_MARKETS in markets:
        raise AccountError("a grower grows for one farm of one market: give exactly one "
                           "--market (not '*')")
    if known_farms is not None:
        (market,) = markets
        if market not in known_farms:
            raise AccountError(f"no market {market!r} on this server")
        if farm not in set(known_farms[market]):
            raise AccountError(f"market {market!r} has no farm {farm!r}")
    return farm


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
    user = session.exec(select(User).where(col(User.name) == name)).first()
    if user is None:
        raise AccountError(f"no user {name!r}")
    return user


def user_grants(session: Session, user_id: int) -> list[tuple[str, str]]:
    rows = session.exec(select(UserRole).where(col(UserRole.user_id) == user_id)).all()
    return sorted((row.role, row.market) for row in rows)


def user_farms(session: Session, user_id: int) -> frozenset[tuple[str, str]]:
    """(market, farm) of the user's grower grants."""
    rows = session.exec(select(UserRole).where(col(UserRole.user_id) == user_id,
                                               col(UserRole.farm).is_not(None))).all()
    return frozenset((row.market, row.farm) for row in rows
                     if row.role in FARM_ROLES and row.farm)


def _grant_record(role: str, market: str, farm: str | None) -> list[str]:
    return [role, market, farm] if farm else [role, market]


def create_user(engine: Engine, name: str, password: str, roles: Iterable[str],
                markets: Iterable[str], actor: str = "cli", farm: str | None = None,
                known_farms: Mapping[str, Iterable[str]] | None = None,
                temporary: bool = False) -> User:
    """A new user; `temporary`: the password is handed over (an invitation) and must be
    changed at the first sign-in."""
    check_name(name)
    grants = check_grants(roles, markets)
    farm = check_farm(grants, farm, known_farms)
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        if session.exec(select(User).where(col(User.name) == name)).first() is not None:
            raise AccountError(f"user {name!r} exists")
        user = User(name=name, password_hash=password_hash, created_at=now(),
                    must_change_password=temporary)
        session.add(user)
        session.flush()
        assert user.id is not None
        for role, market in grants:
            session.add(UserRole(user_id=user.id, role=role, market=market,
                                 farm=farm if role in FARM_ROLES else None))
        audit.append(session, actor, "user.create", None,
                     {"user": name, "grants": [
                         _grant_record(r, m, farm if r in FARM_ROLES else None)
                         for r, m in grants]})
        return user


def list_users(engine: Engine) -> list[tuple[User, list[tuple[str, str]]]]:
    with session_scope(engine) as session:
        users = session.exec(select(User).order_by(User.name)).all()
        return [(u, user_grants(session, u.id)) for u in users if u.id is not None]


def list_user_grants(engine: Engine) -> list[tuple[User, list[tuple[str, str, str | None]]]]:
    """Every user with their (role, market, farm) grants (farm: a grower's, else None)."""
    with session_scope(engine) as session:
        users = session.exec(select(User).order_by(User.name)).all()
        rows = session.exec(select(UserRole)).all()
        by_user: dict[int, list[tuple[str, str, str | None]]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, []).append((row.role, row.market, row.farm))
        for user in users:
            session.expunge(user)
        return [(u, sorted(by_user.get(u.id, []), key=lambda g: (g[0], g[1])))
                for u in users if u.id is not None]


def set_disabled(engine: Engine, name: str, disabled: bool = True, actor: str = "cli") -> None:
    with session_scope(engine) as session:
        user = get_user(session, name)
        user.disabled = disabled
        session.add(user)
        if disabled:
            session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id))
        audit.append(session, actor, "user.disable" if disabled else "user.enable", None,
                     {"user": name})


def reset_password(engine: Engine, name: str, password: str, actor: str = "cli",
                   temporary: bool = False) -> None:
    """Set a user's password and end their sessions; `temporary` (an admin chose it for
    them): they must change it at the next sign-in."""
    password_hash = hash_password(password)
    with session_scope(engine) as session:
        user = get_user(session, name)
        user.password_hash = password_hash
        user.must_change_password = temporary
        session.add(user)
        # Whoever knew the old password may hold a session: end them all.
        session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id))
        audit.append(session, actor, "user.reset_password", None, {"user": name})


def change_grants(engine: Engine, name: str, roles: Iterable[str], markets: Iterable[str],
                  grant: bool, actor: str = "cli", farm: str | None = None,
                  known_farms: Mapping[str, Iterable[str]] | None = None
                  ) -> list[tuple[str, str]]:
    """Grant or revoke roles in markets. Granting grower needs the farm; granting it again
    with another farm moves the grant to that farm. Revoking ignores the farm."""
    grants = check_grants(roles, markets)
    if grant:
        farm = check_farm(grants, farm, known_farms)
    with session_scope(engine) as session:
        user = get_user(session, name)
        assert user.id is not None  # a stored user
        existing = {(r.role, r.market): r for r in session.exec(
            select(UserRole).where(col(UserRole.user_id) == user.id))}
        for key in grants:
            key_farm = farm if grant and key[0] in FARM_ROLES else None
            if grant and key not in existing:
                session.add(UserRole(user_id=user.id, role=key[0], market=key[1],
                                     farm=key_farm))
            elif grant and existing[key].farm != key_farm:
                existing[key].farm = key_farm
                session.add(existing[key])
            elif not grant and key in existing:
                session.delete(existing[key])
        for role, market in grants:
            record = {"user": name, "role": role, "market": market}
            if grant and role in FARM_ROLES:
                record["farm"] = farm or ""
            audit.append(session, actor, "role.grant" if grant else "role.revoke",
                         None if market == ALL_MARKETS else market, record)
        session.flush()
        return user_grants(session, user.id)


# ---- login, throttling, sessions ------------------------------------------------------
#
# Failed sign-ins are counted per (account, address) pair, and an attacker's guesses never
# lock the account itself: see docs/accounts.md, "Sign-in throttling".


def _failures(session: Session, since: datetime, *where) -> tuple[int, datetime]:
    count, last = session.exec(
        select(func.count(), func.max(LoginAttempt.at))
        .where(*where, col(LoginAttempt.at) >= since, col(LoginAttempt.ok) == False)  # noqa: E712
    ).one()
    return int(count), as_utc(last) if last is not None else since


def _backoff(count: int, allowed: int, last: datetime, policy: ThrottlePolicy,
             moment: datetime) -> float:
    if count < allowed:
        return 0.0
    delay = min(policy.backoff * 2 ** min(count - allowed, 40), policy.window)
    return max(0.0, (last + timedelta(seconds=delay) - moment).total_seconds())


def known_pair(session: Session, account: str, address: str, policy: ThrottlePolicy,
               moment: datetime) -> bool:
    """Has this account signed in from this address (limit key) within known_days?"""
    since = moment - timedelta(days=policy.known_days)
    return session.exec(select(LoginAttempt.id).where(
        col(LoginAttempt.account) == account, col(LoginAttempt.address) == address,
        col(LoginAttempt.ok) == True, col(LoginAttempt.at) >= since)  # noqa: E712
    ).first() is not None


def throttle_wait(session: Session, account: str, address: str, policy: ThrottlePolicy,
                  moment: datetime) -> float:
    """Seconds to wait before this pair may try again (0: go ahead). `address` is the
    limit key (addresses.limit_key). After the allowed failures within the window, each
    further failure doubles the wait (capped at the window)."""
    since = moment - timedelta(seconds=policy.window)
    count, last = _failures(session, since, LoginAttempt.account == account,
                            col(LoginAttempt.address) == address)
    wait = _backoff(count, policy.pair_failures, last, policy, moment)
    if wait > 0 or known_pair(session, account, address, policy, moment):
        return wait  # a known pair answers only for its own failures
    for where, allowed in (((LoginAttempt.account == account,), policy.account_failures),
                           ((LoginAttempt.address == address,), policy.address_failures),
                           ((), policy.global_failures)):
        count, last = _failures(session, since, *where)
        wait = max(wait, _backoff(count, allowed, last, policy, moment))
    return wait


def _serialize_logins(session: Session) -> None:
    """Hold the write lock from the throttle check to recording the attempt, so parallel
    attempts cannot all pass the check before any of them is counted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOGIN_LOCK})
    elif dialect == "sqlite":
        session.execute(text("UPDATE login_attempt SET id = id WHERE 0"))


def _claim_attempt(engine: Engine, account: str, address: str, key: str,
                   policy: ThrottlePolicy, moment: datetime) -> int:
    """Check the throttle and count this attempt as a failure until it proves otherwise
    (so a burst of parallel guesses is throttled without waiting for their slow checks).
    Returns the attempt's id; raises Throttled."""
    with session_scope(engine) as session:
        _serialize_logins(session)
        wait = throttle_wait(session, account, key, policy, moment)
        if wait > 0:
            audit.append(session, "anonymous", "auth.login_throttled", None,
                         {"user": account, "address": address})
            attempt_id = None
        else:
            attempt = LoginAttempt(at=moment, account=account, address=key, ok=False)
            session.add(attempt)
            # Failures only matter within the window, successes for known_days.
            session.exec(delete(LoginAttempt).where(
                col(LoginAttempt.at) < moment - timedelta(seconds=policy.window),
                col(LoginAttempt.ok) == False))  # noqa: E712
            session.exec(delete(LoginAttempt).where(
                col(LoginAttempt.at) < moment - timedelta(days=policy.known_days)))
            session.flush()
            attempt_id = attempt.id
    if attempt_id is None:
        raise Throttled(wait)
    return attempt_id


def _open_session(session: Session, user: User, account: str, address: str, key: str,
                  moment: datetime, ttl: float) -> tuple[str, AuthSession]:
    """A successful sign-in: forgive this pair's failures (never other addresses'),
    remember the pair as known, and open a fresh session."""
    assert user.id is not None  # a stored user
    session.exec(delete(LoginAttempt).where(col(LoginAttempt.account) == account,
                                            col(LoginAttempt.address) == key))
    session.add(LoginAttempt(at=moment, account=account, address=key, ok=True))
    cookie = secrets.token_urlsafe(32)
    row = AuthSession(id=sha256_hex(cookie), user_id=user.id,
                      csrf_token=secrets.token_urlsafe(32), created_at=moment,
                      expires_at=moment + timedelta(seconds=ttl))
    session.add(row)
    audit.append(session, f"user:{user.name}", "auth.login", None, {"address": address})
    return cookie, row


def login(engine: Engine, name: str, password: str, address: str, policy: ThrottlePolicy,
          ttl: float) -> tuple[str, AuthSession]:
    """Check a password and open a new session (a fresh id every time, so a session id
    planted before login is never promoted). Returns (cookie value, session row). Raises
    Throttled; SecondFactorDue when the account has TOTP (finish with `login_code`);
    AccountError with one message for every kind of failure."""
    account = name.strip().lower()[:64]
    address = address[:64]
    key = limit_key(address)
    moment = now()
    attempt_id = _claim_attempt(engine, account, address, key, policy, moment)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(col(User.name) == account)).first()
    ok = verify_password(user.password_hash if user else None, password)
    ok = ok and user is not None and not user.disabled
    with session_scope(engine) as session:
        if not ok or user is None:
            audit.append(session, "anonymous", "auth.login_failed", None,
                         {"user": account, "address": address})
        elif user.totp_secret:
            assert user.id is not None  # a stored user
            # The password was right: this attempt is not a failure; the code decides.
            session.exec(delete(LoginAttempt).where(col(LoginAttempt.id) == attempt_id))
            challenge = secrets.token_urlsafe(32)
            session.exec(delete(LoginChallenge).where(
                col(LoginChallenge.expires_at) < moment))
            session.add(LoginChallenge(id=sha256_hex(challenge), user_id=user.id,
                                       address=address, expires_at=moment + CHALLENGE_TTL))
            audit.append(session, f"user:{user.name}", "auth.password_ok", None,
                         {"address": address})
        else:
            return _open_session(session, user, account, address, key, moment, ttl)
    # Raised after the commit: the failed attempt must count even though login fails.
    if ok:
        raise SecondFactorDue(challenge)
    raise AccountError("wrong user name or password")


def login_code(engine: Engine, challenge: str, code: str, address: str,
               policy: ThrottlePolicy, ttl: float) -> tuple[str, AuthSession]:
    """The second step for an account with TOTP: the code from the authenticator app.
    Wrong codes count as failures of the (account, address) pair, like wrong passwords;
    a challenge allows MAX_CODE_TRIES and lives CHALLENGE_TTL."""
    moment = now()
    with session_scope(engine) as session:
        row = session.get(LoginChallenge, sha256_hex(challenge))
        user = session.get(User, row.user_id) if row is not None else None
        if row is None or user is None or as_utc(row.expires_at) <= moment \
                or row.address != address[:64]:
            raise ChallengeExpired()
        account = user.name
    key = limit_key(address)
    attempt_id = _claim_attempt(engine, account, address, key, policy, moment)
    with session_scope(engine) as session:
        row = session.get(LoginChallenge, sha256_hex(challenge))
        user = session.get(User, row.user_id) if row is not None else None
        if row is None or user is None or user.disabled or not user.totp_secret:
            session.exec(delete(LoginAttempt).where(col(LoginAttempt.id) == attempt_id))
            raise ChallengeExpired()
        step = totp.matching_step(user.totp_secret, code, moment, user.totp_last_step)
        if step is None:
            row.tries += 1
            if row.tries >= MAX_CODE_TRIES:
                session.delete(row)
            else:
                session.add(row)
            audit.append(session, "anonymous", "auth.code_failed", None,
                         {"user": account, "address": address})
            last_try = row.tries >= MAX_CODE_TRIES
        else:
            user.totp_last_step = step
            session.add(user)
            session.delete(row)
            return _open_session(session, user, account, address, key, moment, ttl)
    if last_try:
        raise ChallengeExpired()
    raise AccountError("wrong code")


# ---- second factor (TOTP) -------------------------------------------------------------


def totp_start(engine: Engine, user_id: int) -> tuple[str, str]:
    """Begin (or restart) enrolment: a new pending secret. Returns (secret, otpauth URI).
    The secret is shown to its owner once, on the enrolment page; it is never logged or
    written to the audit log."""
    secret = totp.new_secret()
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError("no such user")
        user.totp_pending = secret
        session.add(user)
        return secret, totp.provisioning_uri(secret, user.name)


def totp_pending(engine: Engine, user_id: int) -> tuple[str, str] | None:
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or not user.totp_pending:
            return None
        return user.totp_pending, totp.provisioning_uri(user.totp_pending, user.name)


def totp_confirm(engine: Engine, user_id: int, code: str) -> bool:
    """Finish enrolment with a code from the app: the pending secret becomes the one
    sign-in asks for. False for a wrong code (the pending secret stays)."""
    moment = now()
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or not user.totp_pending:
            raise AccountError("start the set-up first")
        step = totp.matching_step(user.totp_pending, code, moment)
        if step is None:
            return False
        user.totp_secret, user.totp_pending = user.totp_pending, None
        user.totp_enabled_at, user.totp_last_step = moment, step
        session.add(user)
        audit.append(session, f"user:{user.name}", "user.totp_enable", None,
                     {"user": user.name})
        return True


def totp_enabled(engine: Engine, user_id: int) -> datetime | None:
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        return as_utc(user.totp_enabled_at) if user and user.totp_secret and \
            user.totp_enabled_at else None


def reset_totp(engine: Engine, name: str, actor: str = "cli") -> bool:
    """Remove a user's second factor (lost phone): they sign in with the password alone
    and can enrol again. Ends their sessions. False when they had none."""
    with session_scope(engine) as session:
        user = get_user(session, name)
        had = bool(user.totp_secret or user.totp_pending)
        user.totp_secret = user.totp_pending = None
        user.totp_enabled_at = user.totp_last_step = None
        session.add(user)
        session.exec(delete(AuthSession).where(col(AuthSession.user_id) == user.id))
        session.exec(delete(LoginChallenge).where(col(LoginChallenge.user_id) == user.id))
        audit.append(session, actor, "user.totp_reset", None, {"user": name})
        return had


def second_factors(engine: Engine) -> list[tuple[str, bool, datetime | None]]:
    """(user name, is admin, enrolled at) for every user."""
    with session_scope(engine) as session:
        admins = set(session.exec(select(UserRole.user_id).where(col(UserRole.role) == "admin")))
        return [(u.name, u.id in admins,
                 as_utc(u.totp_enabled_at) if u.totp_secret and u.totp_enabled_at else None)
                for u in session.exec(select(User).order_by(User.name))]


# ---- throttled sign-ins: who is held back, and unlocking ------------------------------


@dataclass(frozen=True)
class ThrottleEntry:
    """A scope that is backing off: kind 'pair', 'account', 'address' or 'all'."""

    kind: str
    account: str | None
    address: str | None
    failures: int
    until: datetime


def throttled(engine: Engine, policy: ThrottlePolicy) -> list[ThrottleEntry]:
    """Every pair, account, address (and the whole server) over its threshold within the
    window, with the time its back-off ends."""
    moment = now()
    since = moment - timedelta(seconds=policy.window)
    found: list[ThrottleEntry] = []

    def until(count: int, allowed: int, last: datetime) -> datetime:
        return moment + timedelta(seconds=_backoff(count, allowed, last, policy, moment))

    recent = (col(LoginAttempt.at) >= since, col(LoginAttempt.ok) == False)  # noqa: E712
    with session_scope(engine) as session:
        by_name = {"account": col(LoginAttempt.account), "address": col(LoginAttempt.address)}
        groups = (
            ("pair", ("account", "address"), policy.pair_failures),
            ("account", ("account",), policy.account_failures),
            ("address", ("address",), policy.address_failures),
        )
        for kind, names, allowed in groups:
            columns = [by_name[name] for name in names]
            # SQLAlchemy's select: any number of columns (SQLModel's is typed for up to 4).
            rows = session.execute(
                sa_select(*columns, func.count(), func.max(LoginAttempt.at))
                .where(*recent).group_by(*columns).having(func.count() >= allowed)
                .order_by(func.count().desc()).limit(200)).all()
            for row in rows:
                values = dict(zip(names, row[:-2], strict=True))
                count, last = int(row[-2]), as_utc(row[-1])
                found.append(ThrottleEntry(kind, values.get("account"), values.get("address"),
                                           count, until(count, allowed, last)))
        count, last = _failures(session, since)
        if count >= policy.global_failures:
            found.append(ThrottleEntry("all", None, None, count,
                                       until(count, policy.global_failures, last)))
    return found


def unlock(engine: Engine, account: str | None = None, address: str | None = None,
           actor: str = "cli") -> int:
    """Forget recent failures: of an account (from every address), of an address (for
    every account; an address or its limit key), of one pair, or all (neither given).
    Returns how many failures were forgotten."""
    where = [col(LoginAttempt.ok) == False]  # noqa: E712
    if account is not None:
        where.append(col(LoginAttempt.account) == account.strip().lower()[:64])
    if address is not None:
        address = address.strip()[:64]
        where.append(col(LoginAttempt.address).in_({address, limit_key(address)}))
    with session_scope(engine) as session:
        result = session.exec(delete(LoginAttempt).where(*where))
        count = int(result.rowcount or 0)
        audit.append(session, actor, "auth.unlock", None,
                     {"user": account, "address": address, "failures": count})
        return count


def logout(engine: Engine, cookie: str) -> None:
    with session_scope(engine) as session:
        session.exec(delete(AuthSession).where(col(AuthSession.id) == sha256_hex(cookie)))


def change_own_password(engine: Engine, user_id: int, current: str, new: str,
                        address: str, policy: ThrottlePolicy, keep_session: str) -> None:
    """A signed-in user replaces their password, proving the current one. Throttled like a
    sign-in (a wrong current password counts as a failed sign-in of the account); the
    user's other sessions end, the one in use (`keep_session`, its cookie) stays. Raises
    Throttled, or AccountError whose message starts with the field ("current: ..." or
    "new: ...")."""
    try:
        check_password(new)
    except AccountError as exc:
        raise AccountError(f"new: {exc}") from None
    if new == current:
        raise AccountError("new: choose a password other than the current one")
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or user.disabled:
            raise AccountError("current: this account cannot sign in")
        account, stored = user.name, user.password_hash
    address = address[:64]
    attempt_id = _claim_attempt(engine, account, address, limit_key(address), policy, now())
    ok = verify_password(stored, current)
    password_hash = hash_password(new) if ok else ""
    with session_scope(engine) as session:
        if not ok:
            audit.append(session, f"user:{account}", "auth.password_change_failed", None,
                         {"address": address})
        else:
            session.exec(delete(LoginAttempt).where(col(LoginAttempt.id) == attempt_id))
            user = session.get(User, user_id)
            assert user is not None
            user.password_hash = password_hash
            user.must_change_password = False
            session.add(user)
            session.exec(delete(AuthSession).where(
                col(AuthSession.user_id) == user_id,
                col(AuthSession.id) != sha256_hex(keep_session)))
            audit.append(session, f"user:{account}", "user.change_password", None,
                         {"user": account})
    if not ok:  # raised after the commit: the failed attempt counts
        raise AccountError("current: that is not your current password")


def principal_for_session(engine: Engine, cookie: str) -> Principal | None:
    with session_scope(engine) as session:
        row = session.get(AuthSession, sha256_hex(cookie))
        if row is None:
            return None
        if as_utc(row.expires_at) <= now():
            session.delete(row)
            return None
        user = session.get(User, row.user_id)
        if user is None or user.disabled or user.id is None:
            return None
        return Principal("user", user.id, user.name, frozenset(user_grants(session, user.id)),
                         session_csrf=row.csrf_token, farms=user_farms(session, user.id),
                         must_change_password=user.must_change_password)


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
    if any(role in FARM_ROLES for role, _ in grants):
        raise AccountError("tokens cannot have the grower role: a grower signs in to the "
                           "studio with their own account")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    moment = now()
    with session_scope(engine) as session:
        if session.exec(select(ApiToken).where(col(ApiToken.name) == name)).first() is not None:
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
        return list(session.exec(select(ApiToken).order_by(col(ApiToken.id))))


def revoke_token(engine: Engine, id_or_name: str, actor: str = "cli",
                 cache: TokenCache | None = None) -> ApiToken:
    """Revoke a token; `cache`: the running app's (TokenCache.revoked: forgotten here at
    once, the other nodes told). The CLI has none: it tells the nodes itself."""
    with session_scope(engine) as session:
        row = None
        if id_or_name.isdigit():
            row = session.get(ApiToken, int(id_or_name))
        if row is None:
            row = session.exec(select(ApiToken).where(col(ApiToken.name) == id_or_name)).first()
        if row is None:
            raise AccountError(f"no token {id_or_name!r}")
        if row.revoked_at is None:
            row.revoked_at = now()
            session.add(row)
            audit.append(session, actor, "token.revoke", None, {"token": row.name})
    if row.id is not None and cache is not None:
        cache.revoked(row.id)
    return row


def token_grants(row: ApiToken) -> frozenset[tuple[str, str]]:
    markets = row.markets.split() or [ALL_MARKETS]
    return frozenset((role, ALL_MARKETS if role == "admin" else market)
                     for role in row.roles.split() for market in markets)


TOKEN_CACHE_SECONDS = 5.0  # how long a verified token is believed without the database
TOKEN_CACHE_SIZE = 1024


class TokenCache:
    """Verified tokens of one database, by the token's SHA-256, for TOKEN_CACHE_SECONDS
    (never past the token's own expiry); the running app has one (its assembly builds it).
    A revoke through `revoke_token(..., cache=)` forgets the token at once here and calls
    `on_revoke(token id)` (the app tells the other nodes); a revoke by another process
    without a cluster (the CLI) takes effect here within TOKEN_CACHE_SECONDS. Only valid
    tokens are cached: an unknown one always asks the database."""

    def __init__(self, on_revoke: Callable[[int], None] | None = None) -> None:
        self._entries: dict[str, tuple[float, datetime | None, Principal]] = {}
        self._lock = threading.Lock()
        self._on_revoke = on_revoke

    def revoked(self, token_id: int) -> None:
        """A revoke committed in this process (may run in a worker thread)."""
        self.forget(token_id)
        if self._on_revoke is not None:
            self._on_revoke(token_id)

    def get(self, digest: str, moment: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        until, expires, principal = entry
        if time.monotonic() >= until or (expires is not None and expires <= moment):
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return principal

    def put(self, digest: str, expires: datetime | None, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= TOKEN_CACHE_SIZE:
                self._entries.clear()  # a flood of distinct tokens: start again
            self._entries[digest] = (time.monotonic() + TOKEN_CACHE_SECONDS, expires,
                                     principal)

    def forget(self, token_id: int | None = None) -> None:
        """Forget one token (by its id), or every token (None)."""
        with self._lock:
            if token_id is None:
                self._entries.clear()
                return
            for digest in [d for d, (_, _, p) in self._entries.items() if p.id == token_id]:
                del self._entries[digest]


@db.point
def principal_for_token(engine: Engine, token: str,
                        cache: TokenCache | None = None) -> Principal | None:
    """The token's principal, or None if unknown, revoked or expired. Records its use
    (to the minute: a busy script does not turn every read into a database write). With
    a `cache`, a token verified in the last TOKEN_CACHE_SECONDS is not read again."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    moment = now()
    digest = sha256_hex(token)
    cached = cache.get(digest, moment) if cache is not None else None
    if cached is not None:
        return cached
    with session_scope(engine) as session:
        row = session.exec(select(ApiToken).where(col(ApiToken.token_hash) == digest)
                           ).first()
        if row is None or row.id is None or row.revoked_at is not None:
            return None
        expires = as_utc(row.expires_at)
        if expires is not None and expires <= moment:
            return None
        if row.last_used_at is None or moment - as_utc(row.last_used_at) > timedelta(minutes=1):
            row.last_used_at = moment
            session.add(row)
        principal = Principal("token", row.id, row.name, token_grants(row))
    if cache is not None:
        cache.put(digest, expires, principal)  # after the commit
    return principal


@db.point
def record_write(engine: Engine, principal: Principal, request: str, market: str | None,
                 allowed: bool) -> None:
    """Audit a write request: every one made with a token, and every refused one."""
    with session_scope(engine) as session:
        record_write_in(session, principal, request, market, allowed)


def record_write_in(session: Session, principal: Principal, request: str, market: str | None,
                    allowed: bool) -> None:
    """`record_write` in the caller's transaction (a route that writes appends it with its
    own change: one transaction per request)."""
    action = "token.write" if allowed else "auth.forbidden"
    audit.append(session, principal.actor, action, market, {"request": request[:300]})
