"""Community submissions: a visitor's story or recipe, without an account. It lands as a
draft in the moderation queue (`pending`), or `held` with a reason when it contains
links (the usual spam) or invisible characters (holobazaar.moderation.rules); a curator
approves, edits or rejects it. Submissions are limited per client address by an in-memory
token bucket (per process: behind several processes the effective limit is per process,
see docs/stories.md)."""

from __future__ import annotations

import secrets
import threading
import time
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


class RateLimiter:
    """A token bucket per client address: `per_hour` submissions, burst `burst`."""

    def __init__(self, per_hour: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_hour / 3600.0
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when allowed (a token is taken), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return (1 - tokens) / self.rate if self.rate else float("inf")
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                # Forget full buckets first: they hold no information.
                self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst}
            self._buckets[client] = (tokens - 1, now)
            return 0.0
