"""The audit log table: append-only and hash-chained, so a removed or edited entry breaks
the chain at that point (`verify` finds it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

GENESIS = "0" * 64


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=120)
    action: str = Field(max_length=64, index=True)
    market: str | None = Field(default=None, max_length=64, index=True)
    # Canonical JSON text, stored as hashed so a round trip through the database cannot
    # change the bytes the hash was computed over.
    detail: str = Field(sa_column=Column(Text, nullable=False))
    # Unique: two writers that read the same head cannot both append (no fork in the chain).
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class PublicRecord(SQLModel, table=True):
    """One public price-history record: a market's own hash chain (`seq` 1, 2, ...), the
    projection of the audit log that anyone may read and verify (migration 0013)."""

    __tablename__ = "audit_public"
    __table_args__ = (UniqueConstraint("market", "seq", name="uq_audit_public_seq"),
                      Index("ix_audit_public_item", "market", "sku", "seq"))

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    time: datetime = Field(sa_column=_ts())
    sku: str = Field(max_length=64)
    price: str | None = Field(default=None, max_length=40)
    currency: str | None = Field(default=None, max_length=8)
    unit: str | None = Field(default=None, max_length=20)
    status: str = Field(max_length=16)
    source: str = Field(max_length=16)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class MarketKey(SQLModel, table=True):
    """A market's Ed25519 key pair (raw keys, hex), made on first need."""

    __tablename__ = "audit_market_key"

    market: str = Field(primary_key=True, max_length=64)
    public_key: str = Field(max_length=64)
    private_key: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts())


class SignedHead(SQLModel, table=True):
    """A head this server signed: kept apart from the chains, so `audit verify` can tell a
    chain that lost or re-hashed entries from one that only grew."""

    __tablename__ = "audit_signed_head"
    __table_args__ = (Index("ix_audit_signed_head_market", "market", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    height: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    audit_height: int = Field(sa_column=Column(BigInteger, nullable=False))
    audit_hash: str = Field(max_length=64)
    time: str = Field(max_length=40)  # the signed text, as signed
    signature: str = Field(max_length=128)


class Witness(SQLModel, table=True):
    """Another market server whose heads this server polls and keeps."""

    __tablename__ = "audit_witness"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000, unique=True)
    added_at: datetime = Field(sa_column=_ts())
    last_polled_at: datetime | None = Field(default=None, sa_column=_ts(True))
    last_ok_at: datetime | None = Field(default=None, sa_column=_ts(True))
    status: str = Field(default="new", max_length=16)
    problem: str | None = Field(default=None, sa_column=Column(Text))


class WitnessedHead(SQLModel, table=True):
    """A signed head seen at a witnessed server (stored only after it checked out)."""

    __tablename__ = "audit_witness_head"
    __table_args__ = (Index("ix_audit_witness_head_market", "witness_id", "market", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    witness_id: int = Field(sa_column=Column(Integer, ForeignKey("audit_witness.id",
                                                                 ondelete="CASCADE"),
                                             nullable=False))
    market: str = Field(max_length=64)
    public_key: str = Field(max_length=64)
    height: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)
    audit_height: int = Field(sa_column=Column(BigInteger, nullable=False))
    audit_hash: str = Field(max_length=64)
    time: str = Field(max_length=40)
    signature: str = Field(max_length=128)
    seen_at: datetime = Field(sa_column=_ts())
