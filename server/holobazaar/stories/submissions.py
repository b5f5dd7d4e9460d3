"""Community submissions: a visitor's story or recipe, without an account. It lands as a
draft in the moderation queue (`pending`), or `held` with a reason when it contains
links (the usual spam) or invisible characters (holobazaar.visitor_text); a curator
approves, edits or rejects it. Submissions are limited per client address by a token
bucket (holobazaar.cluster.limits: in Redis when the nodes share one, so the limit holds
across the cluster)."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Engine

from holobazaar import visitor_text as rules
from holobazaar.i18n import Language
from holobazaar.stories import service
from holobazaar.stories.jsonld import slugify
from holobazaar.stories.schema import Ident, RecipeDoc, StoryDoc, required_text

# The rules are shared with pulse notes (one moderation queue, docs/pulse.md).
LINK = rules.LINK


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["story", "recipe"]
    market: Ident
    title: str = Field(min_length=3, max_length=200, description="Story title / recipe name.")
    author: str = Field("", max_length=120, description="How the visitor wants to be named.")
    language: Language = "en"
    body: str = Field("", max_length=20_000, description="Markdown: the story, or the "
                      "recipe's introduction.")
    ingredients: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=60)
    instructions: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=60)

    # Texts are stored without markup: one that is only markup ("<b></b>", "&nbsp;") is
    # refused here, naming the field, rather than failing when the draft is made.
    _title = field_validator("title", mode="after")(required_text)

    @field_validator("ingredients", "instructions", mode="after")
    @classmethod
    def _items(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                required_text(text)
            except ValueError:
                raise ValueError(f"item {i + 1} is empty once markup is removed") from None
        return value


def _texts(data: SubmissionIn) -> str:
    return "\n".join([data.title, data.author, data.body, *data.ingredients,
                      *data.instructions])


def draft(data: SubmissionIn) -> StoryDoc | RecipeDoc:
    """The draft document a submission becomes (raises pydantic's ValidationError)."""
    slug = f"{slugify(data.title)[:60].strip('-')}-{secrets.token_hex(3)}"
    common = {"slug": slug, "market": data.market, "status": "draft", "author": data.author,
              "language": data.language, "body": data.body}
    if data.kind == "story":
        doc: StoryDoc | RecipeDoc = StoryDoc(title=data.title, **common)
    else:
        doc = RecipeDoc(name=data.title, ingredients=data.ingredients or ["(none given)"],
                        instructions=data.instructions, **common)
    return doc


def submit(engine: Engine, data: SubmissionIn,
           doc: StoryDoc | RecipeDoc) -> tuple[service.Saved, str | None]:
    """Store a submission's draft awaiting moderation; returns it and why it is held."""
    reason = rules.hold_reason(_texts(data))
    saved = service.save(engine, doc, "visitor", action="submit", origin="submission",
                         moderation="held" if reason else "pending", moderation_reason=reason)
    return saved, reason
