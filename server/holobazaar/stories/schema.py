"""The story and recipe documents as curators write them (front matter + Markdown body)
and as the API accepts them. One validated shape for files, API and revisions, so a
revision snapshot can be restored by saving it again."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from holobazaar.i18n import Language
from holobazaar.stories.markup import plain_text

Status = Literal["draft", "review", "published", "archived"]
STATUSES: tuple[str, ...] = ("draft", "review", "published", "archived")
Kind = Literal["story", "recipe"]

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,63}$")]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
MediaRef = Annotated[str, Field(min_length=1, max_length=500,
                                pattern=r"^(https?://|/|[a-z0-9][a-z0-9_-]*$)")]

_DURATIONS = TypeAdapter(timedelta)
_DIET_RE = re.compile(r"^(?:https?://schema\.org/)?([A-Za-z]+?)(?:Diet)?$")
DIETS = ("Diabetic", "GlutenFree", "Halal", "Hindu", "Kosher", "LowCalorie", "LowFat",
         "LowLactose", "LowSalt", "Vegan", "Vegetarian")


def iso_duration(value: Any) -> str | None:
    """Parse an ISO 8601 duration (PT1H30M, P0DT0H20M...) and write it back normalised
    (PT1H30M), so files and JSON-LD round-trip byte-stable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.upper().startswith("P"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT20M")
    try:
        delta = _DURATIONS.validate_python(value.upper())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT20M") from None
    seconds = int(delta.total_seconds())
    if seconds < 0 or seconds > 400 * 86400:
        raise ValueError(f"duration {value!r} is out of range")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    date = f"{days}D" if days else ""
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (
        f"{secs}S" if secs else "")
    if not date and not time:
        return "PT0S"
    return "P" + date + ("T" + time if time else "")


def duration_minutes(value: str | None) -> int | None:
    return None if value is None else int(_DURATIONS.validate_python(value).total_seconds()
                                          // 60)


def diet_name(value: str) -> str:
    """schema.org RestrictedDiet: 'https://schema.org/VeganDiet', 'VeganDiet', 'vegan'
    all mean VeganDiet."""
    match = _DIET_RE.match(value.strip())
    if match:
        for known in DIETS:
            if known.lower() == match.group(1).lower():
                return f"{known}Diet"
    raise ValueError(f"unknown diet {value!r} (schema.org RestrictedDiet: "
                     f"{', '.join(d + 'Diet' for d in DIETS)})")


def yield_servings(value: str | None) -> int | None:
    """'4 servings', 'Serves 6', '12' -> the first whole number; None when there is none."""
    match = re.search(r"\d+", value or "")
    return int(match.group()) if match else None


class _Plain(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _clean(value: Any) -> Any:
    # Plain-text fields hold text, never markup: tags are stripped on the way in so no
    # <script> reaches a display state or a page even before output escaping.
    return plain_text(value) if isinstance(value, str) else value


def required_text(value: Any) -> Any:
    # A required text that was only markup or entities ("<b></b>", "&nbsp;") is empty.
    cleaned = _clean(value)
    if isinstance(cleaned, str) and not cleaned.strip():
        raise ValueError("empty once markup is removed")
    return cleaned


class Beat(_Plain):
    text: str = Field(min_length=1, max_length=2000)
    media: MediaRef | None = None
    model: MediaRef | None = None
    duration: float = Field(8.0, ge=0.5, le=600)

    _text = field_validator("text", mode="after")(required_text)


class Ingredient(_Plain):
    text: str = Field(min_length=1, max_length=300)
    sku: Sku | None = None

    _text = field_validator("text", mode="after")(required_text)


class _Doc(_Plain):
    slug: Slug
    market: Ident
    status: Status = "draft"
    author: str = Field("", max_length=120)
    language: Language = "en"
    tags: list[Tag] = Field(default_factory=list, max_length=30)
    producers: list[Ident] = Field(default_factory=list, max_length=20)
    items: list[Sku] = Field(default_factory=list, max_length=50)
    media: list[MediaRef] = Field(default_factory=list, max_length=20)
    body: str = Field("", description="Markdown; rendered and sanitized for pages.")

    _author = field_validator("author", mode="after")(_clean)


class StoryDoc(_Doc):
    kind: Literal["story"] = "story"
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field("", max_length=500)
    beats: list[Beat] = Field(default_factory=list, max_length=50)

    _title = field_validator("title", mode="after")(required_text)
    _texts = field_validator("summary", mode="after")(_clean)

    @property
    def heading(self) -> str:
        return self.title


class RecipeDoc(_Doc):
    kind: Literal["recipe"] = "recipe"
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=1000)
    ingredients: list[Ingredient] = Field(min_length=1, max_length=80)
    instructions: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=80)
    prep_time: str | None = None
    cook_time: str | None = None
    total_time: str | None = None
    recipe_yield: str | None = Field(None, max_length=100)
    category: str | None = Field(None, max_length=100)
    cuisine: str | None = Field(None, max_length=100)
    keywords: list[Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^,]+$")]] = Field(
        default_factory=list, max_length=40)
    diets: list[str] = Field(default_factory=list, max_length=11)
    image: MediaRef | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="schema.org properties "
                                  "Holobazaar does not model, kept for export.")

    _name = field_validator("name", mode="after")(required_text)
    _texts = field_validator("description", "recipe_yield", "category", "cuisine",
                             mode="after")(_clean)

    @field_validator("ingredients", mode="before")
    @classmethod
    def _short_ingredients(cls, value: Any) -> Any:
        # In files an ingredient without a SKU may be written as just its text.
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("instructions", "keywords", mode="after")
    @classmethod
    def _clean_list(cls, value: list[str]) -> list[str]:
        return [required_text(v) for v in value]

    @field_validator("prep_time", "cook_time", "total_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> str | None:
        return iso_duration(value)

    @field_validator("diets", mode="after")
    @classmethod
    def _diets(cls, value: list[str]) -> list[str]:
        return sorted({diet_name(v) for v in value})

    @property
    def heading(self) -> str:
        return self.name

    @property
    def servings(self) -> int | None:
        return yield_servings(self.recipe_yield)


Document = StoryDoc | RecipeDoc
DOC_TYPES: dict[str, type[StoryDoc] | type[RecipeDoc]] = {"story": StoryDoc,
                                                           "recipe": RecipeDoc}


def parse_document(data: dict[str, Any]) -> Document:
    """Validate a document by its `kind` (story when absent)."""
    kind = data.get("kind", "story")
    model = DOC_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"kind must be 'story' or 'recipe', not {kind!r}")
    return model.model_validate(data)
