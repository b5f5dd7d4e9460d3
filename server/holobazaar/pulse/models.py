"""Pulse tables (migration 0007): per-minute aggregates kept as history, raw events kept
only for the retention window, held text feedback, and the salt of the day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(index: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=False, index=index)


class PulseMinute(SQLModel, table=True):
    """One scope's figures for one minute. Written when the minute ends; small groups are
    stored too (they add up to larger ones) but never shown below the k threshold."""

    __tablename__ = "pulse_minute"
    __table_args__ = (UniqueConstraint("market", "scope", "scope_id", "minute",
                                       name="uq_pulse_minute"),)

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    scope: str = Field(max_length=8)  # market | zone | display | recipe
    scope_id: str = Field(max_length=64)
    minute: datetime = Field(sa_column=_ts(index=True))
    devices: int
    love: int
    wow: int
    hungry: int
    learn: int
    dwell_hist: str = Field(max_length=200)  # counts per DWELL_BUCKETS, comma-separated
    dwell_median: int | None = None
    mood: int


class PulseEvent(SQLModel, table=True):
    """A raw reaction or dwell report; deleted after `pulse_retention` seconds. The device
    is an HMAC of the browser's (daily rotated) id with the day's salt: no IP, no account."""

    __tablename__ = "pulse_event"
    __table_args__ = (Index("ix_pulse_event_market_at", "market", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64)
    display: str = Field(max_length=64)
    zone: str = Field(max_length=64)
    kind: str = Field(max_length=8)
    dwell: int | None = None
    recipe: str | None = Field(default=None, max_length=64)  # migration 0008
    device: str = Field(max_length=32)
    at: datetime = Field(sa_column=_ts(index=True))


class PulseFeedback(SQLModel, table=True):
    """Short text feedback, sanitized and held until a curator approves or rejects it."""

    __tablename__ = "pulse_feedback"

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64, index=True)
    display: str = Field(max_length=64)
    kind: str = Field(max_length=8)
    text: str = Field(max_length=400)
    flags: str = Field(default="", max_length=200)  # why it was changed when sanitized
    status: str = Field(default="held", max_length=10)  # held | approved | rejected
    created_at: datetime = Field(sa_column=_ts())
    decided_by: str | None = Field(default=None, max_length=64)
    # Why a curator rejected it, as for community submissions (migration 0008).
    reason: str | None = Field(default=None, max_length=200)


class PulseSalt(SQLModel, table=True):
    """The salt of the current day (per market-independent UTC day). Older salts are
    deleted at rotation, so yesterday's device hashes can no longer be linked to today's."""

    __tablename__ = "pulse_salt"

    day: str = Field(primary_key=True, max_length=10)
    salt: str = Field(max_length=64)
