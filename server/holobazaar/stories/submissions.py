"""Community submissions: a visitor's story or recipe, without an account. It lands as a
draft in the moderation queue (`pending`), or `held` with a reason when it contains
links (the usual spam) or invisible characters (holobazaar.moderation.rules); a curator
approves, edits or rejects it. Submissions are limited per client address by a token
bucket (holobazaar.cluster.limits: in Redis when the nodes share one, so the limit holds
across the cluster)."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from holobazaar.moderation import rules
from holobazaar.stories import service
from holobazaar.stories.jsonld import slugify
from holobazaar.stories.schema import Ident, Language, RecipeDoc, StoryDoc

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


def _texts(data: SubmissionIn) -> str:
    return "\n".join([data.title, data.author, data.body, *data.ingredients,
                      *data.instructions])


def submit(engine: Engine, data: SubmissionIn) -> tuple[service.Saved, str | None]:
    """Store a submission as a draft awaiting moderation; returns it and why it is held."""
    reason = rules.hold_reason(_texts(data))
    slug = f"{slugify(data.title)[:60].strip('-')}-{secrets.token_hex(3)}"
    common = {"slug": slug, "market": data.market, "status": "draft", "author": data.author,
              "language": data.language, "body": data.body}
    if data.kind == "story":
        doc: StoryDoc | RecipeDoc = StoryDoc(title=data.title, **common)
    else:
        doc = RecipeDoc(name=data.title, ingredients=data.ingredients or ["(none given)"],
                        instructions=data.instructions, **common)
    saved = service.save(engine, doc, "visitor", action="submit", origin="submission",
                         moderation="held" if reason else "pending", moderation_reason=reason)
    return saved, reason
