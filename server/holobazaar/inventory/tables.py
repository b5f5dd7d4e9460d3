"""Tables of the inventory truth: feed configuration, accepted batches (idempotency),
item history, display mismatches and held changes (schema in migration 0004)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class FeedConfig(SQLModel, table=True):
    """One market's feed: webhook secret, optional pull source, and `revision`, bumped by
    every applied batch so a server notices changes written by another process (the
    import command, another node)."""

    __tablename__ = "inventory_feed"

    market: str = Field(primary_key=True, max_length=64)
    secret: str | None = Field(default=None, max_length=128)
    pull_url: str | None = Field(default=None, max_length=2000)
    pull_format: str = Field(default="json", max_length=8)
    pull_interval: float = 60.0
    disappear: str = Field(default="sold_out", max_length=16)
    etag: str | None = Field(default=None, max_length=256)
    last_modified: str | None = Field(default=None, max_length=64)
    last_feed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False,
                                                      server_default="0"))


class FeedBatch(SQLModel, table=True):
    __tablename__ = "inventory_batch"
    __table_args__ = (UniqueConstraint("market", "idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    source: str = Field(max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=200)
    body_hash: str = Field(max_length=64)
    response: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts())


class ItemHistory(SQLModel, table=True):
    __tablename__ = "inventory_history"

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    sku: str = Field(max_length=64)
    batch_id: int | None = None
    op: str = Field(max_length=16)
    data: str = Field(sa_column=Column(Text, nullable=False))
    source_version: int | None = Field(default=None, sa_column=Column(BigInteger))
    at: datetime = Field(sa_column=_ts())


class Mismatch(SQLModel, table=True):
    __tablename__ = "inventory_mismatch"

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    display: str = Field(max_length=64)
    sku: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=16)
    expected: str = Field(sa_column=Column(Text, nullable=False))
    shown: str = Field(sa_column=Column(Text, nullable=False))
    detected_at: datetime = Field(sa_column=_ts())
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(True))
    resolution: str | None = Field(default=None, max_length=32)


# The reason of a held change that is a curator's manual change waiting for a second
# curator (a `four_eyes` market): unlike the feed's holds it masks nothing on displays,
# the stored price stands until the change is approved.
FOUR_EYES = "four_eyes"


class HeldChange(SQLModel, table=True):
    __tablename__ = "inventory_held"

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    sku: str = Field(max_length=64)
    batch_id: int | None = None
    reason: str = Field(max_length=32)
    old: str | None = Field(default=None, sa_column=Column(Text))
    new: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_ts())
    decided_at: datetime | None = Field(default=None, sa_column=_ts(True))
    decision: str | None = Field(default=None, max_length=16)
    decided_by: str | None = Field(default=None, max_length=120)
    # A curator's manual change waiting for a second curator (reason `four_eyes`): who
    # asked for it, and so may not approve it (migration 0012).
    requested_by: str | None = Field(default=None, max_length=120)
