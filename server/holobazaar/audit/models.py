"""The audit log table: append-only and hash-chained, so a removed or edited entry breaks
the chain at that point (`verify` finds it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
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
