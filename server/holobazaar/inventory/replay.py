"""Signed feed requests are used once: every accepted signature is remembered in the
database (every node of a cluster sees it) until its timestamp has left the replay window.

A signature seen again is let through only with the Idempotency-Key it first came with:
that is a sender retrying the same request, answered from the stored batch (nothing is
applied twice). With any other key it is a replay and refused. The v2 form signs the key,
so for it a changed key already fails the signature; the old v1 form does not, and its
signatures are remembered the same way, so they cannot be replayed either.

Also kept here: when this database started accepting v2 (migration 0009), from which the
grace period for the old form is counted (HOLOBAZAAR_INVENTORY_V1_GRACE_DAYS)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Column, DateTime, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, SQLModel, col, select

from holobazaar import db
from holobazaar.db import session_scope

log = logging.getLogger(__name__)

# Kept past the replay window by this much: nodes' clocks may differ (a node running
# ahead must not purge a signature a node running behind would still accept).
CLOCK_MARGIN = 120
PURGE_EVERY = 60.0


class SeenSignature(SQLModel, table=True):
    __tablename__ = "inventory_feed_signature"

    market: str = Field(primary_key=True, max_length=64)
    digest: str = Field(primary_key=True, max_length=64)  # the HMAC, hex
    form: str = Field(max_length=4)
    idempotency_key: str = Field(max_length=200)
    expires: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class SigningSince(SQLModel, table=True):
    """One row: when this database began accepting v2 signatures."""

    __tablename__ = "inventory_signing"

    id: int = Field(default=1, primary_key=True)
    v2_since: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def _insert(engine: Engine, model):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def remember(engine: Engine, market: str, digest: str, form: str, key: str,
             expires: int) -> bool:
    """Record a signature; False when it was already used with another key (a replay).
    Atomic across nodes: the first insert wins, a concurrent one waits for it and then
    compares keys."""
    with session_scope(engine) as session:
        session.execute(_insert(engine, SeenSignature).values(
            market=market, digest=digest, form=form, idempotency_key=key, expires=expires)
            .on_conflict_do_nothing())
        first = session.exec(select(SeenSignature.idempotency_key).where(
            SeenSignature.market == market, SeenSignature.digest == digest)).one()
    return first == key


def purge(engine: Engine, now: float | None = None) -> int:
    """Forget signatures whose timestamps no node accepts any more."""
    now = time.time() if now is None else now
    with session_scope(engine) as session:
        result = session.exec(delete(SeenSignature).where(col(SeenSignature.expires) < now))
    return result.rowcount or 0


def v2_since(engine: Engine) -> datetime:
    """When this database started accepting v2 (written by migration 0009; a database
    missing the row gets it now)."""
    with session_scope(engine) as session:
        found = session.get(SigningSince, 1)
        if found is None:
            session.execute(_insert(engine, SigningSince).values(
                id=1, v2_since=datetime.now(UTC)).on_conflict_do_nothing())
            found = session.get(SigningSince, 1)
        assert found is not None
        since = found.v2_since
    return since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)


class ReplayGuard:
    """One per app: remembers signatures, purges expired ones at most once a minute per
    process, and knows when the old signing form stops being accepted."""

    def __init__(self, engine: Engine, window: float, v1_grace_days: float) -> None:
        self.engine = engine
        self.window = window
        self.v1_grace = timedelta(days=v1_grace_days)
        self._v1_until: datetime | None = None
        self._purged = 0.0

    def expires(self, timestamp: int) -> int:
        return int(timestamp + self.window + CLOCK_MARGIN) + 1

    @db.point
    def v1_until(self) -> datetime:
        if self._v1_until is None:
            self._v1_until = v2_since(self.engine) + self.v1_grace
        return self._v1_until

    def v1_accepted(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) < self.v1_until()

    @db.point
    def use(self, market: str, digest: str, form: str, key: str, timestamp: int) -> bool:
        """Remember this use of a signature (blocking: call from a worker thread)."""
        now = time.time()
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            try:
                purge(self.engine, now)
            except SQLAlchemyError as exc:  # best effort: the next purge catches up
                log.warning("feed signatures: purge failed (%s)", exc)
        return remember(self.engine, market, digest, form, key, self.expires(timestamp))
