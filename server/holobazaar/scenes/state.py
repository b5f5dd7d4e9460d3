"""The display state's shape: what the compositor produces for a `market/<m>/display/<d>`
channel (and a studio preview channel), as pydantic models.

The hub does not validate states on the hot path (the compositor is the only writer of
display states and is tested against this); these models document the state and
`display_state_json_schema()` is published at `GET /api/v1/schema/display-state` so a
client author or a third-party renderer can check what they receive. docs/protocol.md
("Display state") describes the meaning of each field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Vector = Annotated[list[float], Field(min_length=3, max_length=3)]
Price = Annotated[str, Field(pattern=r"^[0-9]+\.[0-9]{2}$",
                             description="Decimal string with two places; never a float.")]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemState(_Closed):
    """One inventory item as a display shows it. A price the server cannot vouch for (a
    held change, or no usable price) is `price: null` with `notice` ("price at the stall");
    `verified: false` when the market's feed is stale."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        # price null <=> a notice replaces it
        "if": {"properties": {"price": {"type": "null"}}},
        "then": {"required": ["notice"]},
        "dependentSchemas": {"notice": {"properties": {"price": {"type": "null"}}}},
    })

    sku: str = Field(min_length=1)
    name: str
    price: Price | None
    currency: str = Field(description="ISO 4217 code (may be empty when unknown).")
    unit: str = Field(description="Unit the price is per ('kg', 'each'); may be empty.")
    stock: int | None = Field(ge=0)
    status: Literal["in_stock", "low", "sold_out"]
    farm: str | None
    # Both are absent unless set (never null): the defaults only make them optional, which
    # a None default outside the type is pydantic's one way to say (hence the ignores).
    notice: str = Field(None, min_length=1,  # type: ignore[assignment]
                        description="Shown instead of the price (price is null).")
    verified: Literal[False] = Field(None,  # type: ignore[arg-type]
                                     description="Present (false) while the feed is stale.")


class _NodeBase(_Closed):
    parent: str | None
    order: int = Field(ge=0)
    position: Vector
    rotation: Vector = Field(description="Degrees, XYZ order.")
    scale: Vector
    visible: bool = Field(description="False also for a node bound to a removed item.")
    item: str | None


class Lod(_Closed):
    src: str
    triangles: int = Field(ge=0)
    bytes: int = Field(ge=0)


class ModelNodeState(_NodeBase):
    kind: Literal["model"]
    asset: str
    src: str | None = Field(description="null: the file is missing (drawn as a placeholder).")
    label: str
    lods: list[Lod] | None = None
    fallback: str | None = None


class TextNodeState(_NodeBase):
    kind: Literal["text"]
    text: str
    size: float
    color: str
    align: Literal["left", "center", "right"]
    max_width: float | None


class ImageNodeState(_NodeBase):
    kind: Literal["image"]
    asset: str
    src: str | None
    width: float
    alt: str


class PanelNodeState(_NodeBase):
    kind: Literal["panel"]
    title: str
    body: str
    width: float
    height: float
    color: str
    opacity: float = Field(ge=0, le=1)


class LightNodeState(_NodeBase):
    kind: Literal["light"]
    light: Literal["ambient", "directional", "point", "spot"]
    color: str
    intensity: float


class GroupNodeState(_NodeBase):
    kind: Literal["group"]


NodeState = Annotated[
    ModelNodeState | TextNodeState | ImageNodeState | PanelNodeState | LightNodeState
    | GroupNodeState,
    Field(discriminator="kind"),
]


class DisplayInfo(_Closed):
    id: str
    title: str
    description: str
    anchor: dict[str, Any] = Field(description="{kind: marker|surface|geo, ...}")


class HoursState(_Closed):
    """The market's opening hours at the moment composed (present when market.yaml has
    `hours:`). Times are ISO 8601 in the market's local time, with its offset."""

    open: bool
    opens_at: str | None = Field(description="The next opening (while closed).")
    closes_at: str | None = Field(description="The closing (while open).")


class ScheduleState(_Closed):
    """Present when the display has a schedule: the variant in force (null: its own
    content)."""

    variant: str | None


class DisplayStateModel(_Closed):
    """The state of a display channel (v1)."""

    v: Literal[1]
    market: str
    zone: str
    display: DisplayInfo
    farm: dict[str, Any] | None
    items: dict[str, ItemState] = Field(description="By SKU: the items the display binds "
                                        "and the inventory knows (a removed SKU is absent).")
    nodes: dict[str, NodeState]
    bindings: dict[str, Any] | None = Field(
        None, description="Data other domains bind (stories, pulse), by binding name.")
    hours: HoursState | None = None
    schedule: ScheduleState | None = None
    language: str | None = Field(None, description=(
        "Present on a language channel (`...?lang=nl`): the language its texts are in; "
        "absent: the market's default language."))


def display_state_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a display state, served at /api/v1/schema/display-state."""
    schema = DisplayStateModel.model_json_schema(ref_template="#/$defs/{model}")
    nodes = schema["properties"]["nodes"]["additionalProperties"]
    # A node is checked against its kind's schema only (the discriminator), not against
    # every kind (`oneOf`): the same meaning, and general validators run ~10x faster.
    mapping = nodes["discriminator"]["mapping"]
    schema["properties"]["nodes"]["additionalProperties"] = {
        "type": "object", "required": ["kind"],
        "properties": {"kind": {"enum": sorted(mapping)}},
        "allOf": [{"if": {"properties": {"kind": {"const": kind}}}, "then": {"$ref": ref}}
                  for kind, ref in sorted(mapping.items())],
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Holobazaar display state v1", **schema}
