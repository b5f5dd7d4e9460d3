"""Tables of the story and recipe repository (created by migration 0003).

A story or recipe row keeps the validated document (`doc`, the same shape as the files
and the API) plus the columns queries need; beats and ingredients are also kept as rows
(ingredient -> inventory SKU drives "cook from what's here"). Every save appends a
`content_revision` with a full snapshot, so any revision can be restored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Column:
    return Column(DateTime(timezone=True), nullable=nullable)


class Producer(SQLModel, table=True):
    """A farm or producer of a market (kept in sync with the market's scene files)."""

    __tablename__ = "producer"

    market: str = Field(primary_key=True, max_length=64)
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    location: str = Field(default="", max_length=200)
    description: str = Field(default="")


class DocumentRow(SQLModel):
    """The columns a story and a recipe share (each kind has its own table)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    market: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16, index=True)
    origin: str = Field(max_length=16, description="curator, import or submission")
    moderation: str | None = Field(default=None, max_length=16,
                                   description="submissions: pending, held, approved, rejected")
    moderation_reason: str | None = Field(default=None, max_length=300)
    title: str = Field(max_length=200)
    language: str = Field(max_length=16)
    # A mixin cannot share Column objects between tables: sa_type makes one per table.
    doc: dict[str, Any] = Field(sa_type=JSON, nullable=False)
    revision: int = 1
    created_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    updated_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    published_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True),
                                          nullable=True)


class Story(DocumentRow, table=True):
    __tablename__ = "story"


class Recipe(DocumentRow, table=True):
    __tablename__ = "recipe"


class StoryBeat(SQLModel, table=True):
    __tablename__ = "story_beat"

    id: int | None = Field(default=None, primary_key=True)
    story_id: int = Field(sa_column=Column(Integer, ForeignKey("story.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    position: int
    text: str
    media: str | None = Field(default=None, max_length=500)
    model: str | None = Field(default=None, max_length=500)
    duration: float


class RecipeIngredient(SQLModel, table=True):
    __tablename__ = "recipe_ingredient"

    id: int | None = Field(default=None, primary_key=True)
    recipe_id: int = Field(sa_column=Column(Integer, ForeignKey("recipe.id", ondelete="CASCADE"),
                                            nullable=False, index=True))
    position: int
    text: str = Field(max_length=300)
    sku: str | None = Field(default=None, max_length=64, index=True)


class ContentRevision(SQLModel, table=True):
    __tablename__ = "content_revision"
    __table_args__ = (UniqueConstraint("kind", "slug", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    slug: str = Field(max_length=100, index=True)
    number: int
    actor: str = Field(max_length=120)
    at: datetime = Field(sa_column=_ts())
    action: str = Field(max_length=32)
    changes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class DocumentTranslation(SQLModel, table=True):
    """A story's or recipe's text in another language, with its own review status
    (stories/translations.py; migration 0022)."""

    __tablename__ = "document_translation"
    __table_args__ = (UniqueConstraint("kind", "slug", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    slug: str = Field(max_length=100, index=True)
    market: str = Field(max_length=64, index=True)
    language: str = Field(max_length=16)
    status: str = Field(max_length=16, description="draft, review or published")
    fields: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    revision: int = 1
    updated_by: str = Field(max_length=120)
    updated_at: datetime = Field(sa_column=_ts())
    reviewed_by: str | None = Field(default=None, max_length=120)


class SearchDoc(SQLModel, table=True):
    """What search sees of a published story or recipe. SQLite indexes it with an FTS5
    table kept in step by triggers; PostgreSQL with a generated tsvector column + GIN."""

    __tablename__ = "search_doc"
    __table_args__ = (UniqueConstraint("kind", "slug"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    slug: str = Field(max_length=100)
    market: str = Field(max_length=64, index=True)
    language: str = Field(max_length=16)
    title: str
    body: str
    tags: str = Field(description="Tags and keywords, space-separated, for matching.")
    # Filter columns hold '|a|b|' so a filter is one LIKE '%|a|%' on every database.
    tag_list: str
    producer_list: str
    diet_list: str
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
