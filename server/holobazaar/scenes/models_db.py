"""Database rows of the scenes domain: a display's authoring revisions (issue #18)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class DisplayRevision(SQLModel, table=True):
    __tablename__ = "display_revision"
    __table_args__ = (UniqueConstraint("market", "display", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    market: str = Field(max_length=64, index=True)
    display: str = Field(max_length=64)
    number: int
    actor: str = Field(max_length=120)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    action: str = Field(max_length=32)  # save, create, delete, restore
    etag: str = Field(max_length=80)
    diff: str = Field(sa_column=Column(Text, nullable=False))
    document: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
