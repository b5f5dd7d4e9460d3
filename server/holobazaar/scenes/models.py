"""The scene format: what curators write in `scenes/<market>/*.yaml`.

These pydantic models are the single definition of the format: the loader validates with
them, `GET /api/v1/schema/scene` publishes their JSON Schema, and docs/scene-format.md
describes them. Every model forbids unknown keys so a typo is an error, not a silent no-op.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from holobazaar.i18n import SOURCE_LANGUAGE, Language
from holobazaar.scenes.schedule import valid_zone
from holobazaar.scenes.schedule_format import OpeningHours, ScheduleEntry, Variant

FORMAT_VERSION: Final = 1

# Identifiers appear in channel names and JSON Pointer paths, so keep them to a safe alphabet.
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
AssetName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
Template = Annotated[str, Field(max_length=2000)]


Coordinates = TypeVar("Coordinates", bound=tuple[float, ...])


def finite(values: Coordinates) -> Coordinates:
    """`values` unchanged, or ValueError unless each is a finite number within ±1e6."""
    for v in values:
        if not math.isfinite(v) or abs(v) > 1e6:
            raise ValueError("coordinates must be finite numbers within ±1,000,000")
    return values


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A translated text: never empty (a missing translation is left out and falls back to the
# market's default language, per field).
Translated = Annotated[str, Field(min_length=1, max_length=2000)]


class NamedTranslation(Strict):
    name: Translated | None = None
    description: Translated | None = None


class DisplayTranslation(Strict):
    title: Translated | None = None
    description: Translated | None = None


class FarmTranslation(Strict):
    location: Translated | None = None
    description: Translated | None = None


class TextTranslation(Strict):
    text: Translated | None = None


class PanelTranslation(Strict):
    title: Translated | None = None
    body: Translated | None = None


class LabelTranslation(Strict):
    label: Translated | None = None


class AltTranslation(Strict):
    alt: Translated | None = None


TRANSLATIONS_HELP = ("The text fields in other languages of the market, by language code "
                     "(docs/scene-format.md, Languages): a field left out falls back to "
                     "the market's default language.")


class MarketInfo(Strict):
    id: Ident
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    languages: list[Language] = Field(
        default_factory=lambda: [SOURCE_LANGUAGE], min_length=1, max_length=20,
        description="The languages the market's content is offered in; the first is the "
        "default, which every text is written in (docs/scene-format.md, Languages).")
    translations: dict[Language, NamedTranslation] = Field(
        default_factory=dict, description=TRANSLATIONS_HELP)
    timezone: str = Field("UTC", description="IANA name, e.g. Europe/Amsterdam: opening "
                          "hours and schedules are in this local time.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if error := valid_zone(value):
            raise ValueError(error)
        return value

    @field_validator("languages")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each language once")
        return value

    @property
    def language(self) -> str:
        """The default language: what every text is written in."""
        return self.languages[0]


class ZoneMap(Strict):
    """Where a zone lies on the market's plan, in percent of the plan's width and height
    (0-100, origin top left): the market page draws its live pulse heatmap from these."""

    x: float = Field(ge=0, le=100)
    y: float = Field(ge=0, le=100)
    w: float = Field(gt=0, le=100)
    h: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _inside(self) -> ZoneMap:
        if self.x + self.w > 100 or self.y + self.h > 100:
            raise ValueError("the zone must lie within the plan: x + w and y + h at most 100")
        return self


class Zone(Strict):
    id: Ident
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    map: ZoneMap | None = Field(None, description="Position on the market plan (heatmap).")
    translations: dict[Language, NamedTranslation] = Field(default_factory=dict,
                                                           description=TRANSLATIONS_HELP)


class FarmPhoto(Strict):
    asset: AssetName = Field(description="An image in the market's assets (uploaded "
                             "through the asset pipeline), by name.")
    alt: str = Field("", max_length=200, description="What the photo shows, for people "
                     "who cannot see it.")


class Farm(Strict):
    id: Ident
    name: str = Field(min_length=1, max_length=120)
    location: str = Field("", max_length=200)
    description: str = Field("", max_length=2000)
    practices: list[Annotated[str, Field(max_length=120)]] = Field(default_factory=list,
                                                                   max_length=20)
    photos: list[FarmPhoto] = Field(default_factory=list, max_length=12)
    translations: dict[Language, FarmTranslation] = Field(default_factory=dict,
                                                          description=TRANSLATIONS_HELP)


StockStatus = Literal["in_stock", "low", "sold_out"]


class Item(Strict):
    """Seed inventory: loaded into the database when the SKU is new (the database is the
    live truth afterwards; an edit of these values in the file is applied as a change)."""

    sku: Sku
    name: str = Field(min_length=1, max_length=120)
    price: Decimal = Field(ge=0, le=Decimal("1000000"), max_digits=12, decimal_places=4)
    unit: str = Field("each", min_length=1, max_length=20)
    stock: int | None = Field(None, ge=0, le=10_000_000)
    status: StockStatus = "in_stock"
    farm: Ident | None = None


class MarketFile(Strict):
    """`scenes/<market>/market.yaml`."""

    format: Literal[1] = FORMAT_VERSION
    market: MarketInfo
    zones: list[Zone] = Field(min_length=1)
    farms: list[Farm] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)
    four_eyes: bool = Field(False, strict=True, description=(
        "A curator's price change beyond the hold policy, once confirmed, also needs a "
        "second curator's approval (docs/inventory.md)."))
    growers_set_prices: bool = Field(False, strict=True, description=(
        "Growers may change their own items' prices (under the same hold policy as a "
        "curator's change); otherwise they set stock only (docs/studio.md, Growers)."))
    hours: OpeningHours | None = Field(None, description=(
        "Opening hours in the market's timezone (docs/scene-format.md, Opening hours); "
        "without them the market counts as always open."))
    stories_four_eyes: bool = Field(False, strict=True, description=(
        "Stories and recipes: the curator who sent a document for review or edited it "
        "since may not publish it; another curator reviews and publishes it "
        "(docs/studio.md, Stories and recipes)."))


# ---- display scenes -----------------------------------------------------------------


class Transform(Strict):
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="Euler angles in degrees, XYZ order."
    )
    scale: float | tuple[float, float, float] = 1.0

    @field_validator("position", "rotation")
    @classmethod
    def _check_finite(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        return finite(v)

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, v: float | tuple[float, float, float]):
        values = (v,) if isinstance(v, float | int) else v
        finite(values)
        if any(s <= 0 for s in values):
            raise ValueError("scale must be positive")
        return v


class NodeBase(Transform):
    id: Ident
    item: Sku | None = Field(
        None, description="Binds `item` in this node's templates to that inventory item."
    )
    visible: bool = True


class ModelNode(NodeBase):
    kind: Literal["model"]
    asset: AssetName = Field(description=(
        "Name of a model: a file in assets/ (without extension) or one the market uploaded."))
    label: Template = Field("", description="Shown on the placeholder if the model fails.")
    translations: dict[Language, LabelTranslation] = Field(default_factory=dict,
                                                           description=TRANSLATIONS_HELP)


class TextNode(NodeBase):
    kind: Literal["text"]
    text: Template
    size: float = Field(0.05, gt=0, le=10, description="Glyph height in metres.")
    color: Color = "#ffffff"
    align: Literal["left", "center", "right"] = "center"
    max_width: float | None = Field(None, gt=0, le=100)
    translations: dict[Language, TextTranslation] = Field(default_factory=dict,
                                                          description=TRANSLATIONS_HELP)


class ImageNode(NodeBase):
    kind: Literal["image"]
    asset: AssetName
    width: float = Field(0.3, gt=0, le=100)
    alt: Template = ""
    translations: dict[Language, AltTranslation] = Field(default_factory=dict,
                                                         description=TRANSLATIONS_HELP)


class PanelNode(NodeBase):
    kind: Literal["panel"]
    title: Template = ""
    body: Template = ""
    width: float = Field(0.4, gt=0, le=100)
    height: float = Field(0.25, gt=0, le=100)
    color: Color = "#1e2a1e"
    opacity: float = Field(0.85, ge=0, le=1)
    translations: dict[Language, PanelTranslation] = Field(default_factory=dict,
                                                           description=TRANSLATIONS_HELP)


class LightNode(NodeBase):
    kind: Literal["light"]
    light: Literal["ambient", "directional", "point", "spot"] = "point"
    color: Color = "#ffffff"
    intensity: float = Field(1.0, ge=0, le=100)


class GroupNode(NodeBase):
    kind: Literal["group"]
    children: list[Node] = Field(default_factory=list)


Node = Annotated[
    ModelNode | TextNode | ImageNode | PanelNode | LightNode | GroupNode,
    Field(discriminator="kind"),
]
GroupNode.model_rebuild()


class MarkerAnchor(Strict):
    kind: Literal["marker"]
    size: float = Field(0.15, gt=0, le=5, description="Printed marker edge in metres.")


class SurfaceAnchor(Strict):
    kind: Literal["surface"]


class GeoAnchor(Strict):
    kind: Literal["geo"]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float = 0.0


Anchor = Annotated[MarkerAnchor | SurfaceAnchor | GeoAnchor, Field(discriminator="kind")]


class Display(Strict):
    id: Ident
    zone: Ident
    title: Template = Field(min_length=1)
    description: Template = ""
    translations: dict[Language, DisplayTranslation] = Field(default_factory=dict,
                                                             description=TRANSLATIONS_HELP)
    farm: Ident | None = None
    anchor: Anchor = SurfaceAnchor(kind="surface")
    items: list[Sku] = Field(default_factory=list, description="Products this display sells.")
    nodes: list[Node] = Field(min_length=1)
    variants: list[Variant] = Field(default_factory=list, max_length=50, description=(
        "Content variants the schedule switches to (docs/scene-format.md, Schedules)."))
    schedule: list[ScheduleEntry] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _unique_node_ids(self) -> Display:
        seen: set[str] = set()
        for node, _parent in iter_nodes(self.nodes):
            if node.id in seen:
                raise ValueError(f"node id {node.id!r} is used twice")
            seen.add(node.id)
        return self


class DisplayFile(Strict):
    """`scenes/<market>/displays/<display>.yaml`."""

    format: Literal[1] = FORMAT_VERSION
    display: Display


def translated(source: BaseModel, field: str, language: str | None) -> str:
    """`source`'s text `field` in `language`: its translation when it has one, else the
    text as written (the market's default language)."""
    translations = getattr(source, "translations", None) or {}
    found = getattr(translations.get(language), field, None) if language else None
    return found if found is not None else getattr(source, field)


def iter_nodes(nodes: list[Node], parent: str | None = None):
    """Depth-first (node, parent id) walk; groups before their children."""
    for node in nodes:
        yield node, parent
        if isinstance(node, GroupNode):
            yield from iter_nodes(node.children, node.id)


def scene_json_schema(*more_files: type[BaseModel]) -> dict:
    """JSON Schema for the scene files and the file formats built on them (show files,
    passed by shows/routes.py, which serves it at /api/v1/schema/scene)."""
    files: tuple[type[BaseModel], ...] = (MarketFile, DisplayFile, *more_files)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Holobazaar scene files",
        "oneOf": [{"$ref": f"#/$defs/{model.__name__}"} for model in files],
        "$defs": _merged_defs(*files),
    }


def _merged_defs(*models: type[BaseModel]) -> dict:
    defs: dict = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return defs
