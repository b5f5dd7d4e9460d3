"""The v1 stream protocol: one pydantic model per message. Client messages are validated
with these; server messages are documented by them (the hub encodes its frames directly,
once, for speed). `protocol_json_schema()` is served at /api/v1/schema/protocol and
docs/protocol.md describes the semantics."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from holobazaar.channels import CHANNEL_PATTERN

PROTOCOL_VERSION = 1

ChannelName = Annotated[
    str,
    Field(
        max_length=200,
        pattern=CHANNEL_PATTERN,
    ),
]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- client -> server -------------------------------------------------------------


class Subscription(Message):
    channel: ChannelName
    epoch: str | None = Field(None, max_length=64)
    offset: int | None = Field(None, ge=0)


class Hello(Message):
    type: Literal["hello"]
    protocol: int
    subscribe: list[Subscription] = Field(default_factory=list, max_length=256)
    client: dict[str, Any] | None = Field(
        None, description="Optional client description, e.g. {device: 'phone'}."
    )
    token: str | None = Field(
        None, min_length=1, max_length=512,
        description="API token of a performer or curator, for private channels (accounts).",
    )


class Ping(Message):
    type: Literal["ping"]
    t0: float = Field(allow_inf_nan=False)  # echoed in the pong: NaN is not JSON


class CueReport(Message):
    id: str = Field(min_length=1, max_length=120)
    executed_at: float = Field(description="Server-time estimate (ms) when the client "
                               "executed the cue: its start, by the client's clock offset.",
                               allow_inf_nan=False)


class Heartbeat(Message):
    type: Literal["heartbeat"]
    channel: ChannelName
    offset: int = Field(ge=0)
    state_hash: Hash
    cue: CueReport | None = Field(None, description="The last show cue this client ran.")


class Leave(Message):
    type: Literal["leave"]
    channel: ChannelName | None = Field(None, description="Omit to close the connection.")


Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
# A random id the browser makes and rotates daily (docs/pulse.md); never an account or IP.
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
# A reaction's own id, made by the client: a reaction sent again (queued offline, resent
# after a reconnect) with the same id is counted once (docs/pulse.md, "Offline").
ReactionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class Reaction(Message):
    """A visitor's tap on a display they are subscribed to (docs/pulse.md)."""

    type: Literal["reaction"]
    market: Ident
    display: Ident
    kind: str = Field(min_length=1, max_length=32,
                      description="love | wow | hungry | learn; others: error unknown_kind.")
    device: DeviceId
    text: str | None = Field(None, max_length=1000,
                             description="Optional feedback; sanitized, held for moderation.")
    recipe: Ident | None = Field(None, description="A recipe card's slug: the reaction is to "
                                 "that recipe, shown on this display; others: error "
                                 "unknown_recipe.")
    id: ReactionId | None = Field(None, description="The client's id for this tap: answered "
                                  "by `ack`; the same id again (a resend) is counted once.")


class Dwell(Message):
    """How long the display was in view, in coarse buckets (0, 5, 15, 30, 60, 120, 300 s);
    other values are clamped to the bucket below, at most 300."""

    type: Literal["dwell"]
    market: Ident
    display: Ident
    seconds: float = Field(ge=0, allow_inf_nan=False)
    device: DeviceId


ClientMessage = Annotated[Hello | Ping | Heartbeat | Leave | Reaction | Dwell,
                          Field(discriminator="type")]
client_message_adapter: TypeAdapter[Hello | Ping | Heartbeat | Leave | Reaction | Dwell] = (
    TypeAdapter(ClientMessage))
CLIENT_TYPES = {"hello", "ping", "heartbeat", "leave", "reaction", "dwell"}


# ---- server -> client -------------------------------------------------------------


class Limits(Message):
    max_frame_bytes: int
    max_subscriptions: int
    rate: float
    burst: int
    heartbeat_interval_ms: int
    reaction_rate: float | None = Field(None, description="reaction + dwell messages/s.")
    reaction_burst: int | None = None


class Welcome(Message):
    type: Literal["welcome"]
    protocol: int
    session: str
    server_time: float = Field(description="Milliseconds since the Unix epoch.")
    limits: Limits


class Snapshot(Message):
    type: Literal["snapshot"]
    channel: ChannelName
    epoch: str
    offset: int
    state: dict[str, Any]
    state_hash: Hash


class PatchOp(BaseModel):
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: Any = None
    from_: str | None = Field(None, alias="from")


class Patch(Message):
    type: Literal["patch"]
    channel: ChannelName
    epoch: str
    offset: int
    from_: int | None = Field(
        None, alias="from",
        description="Present on a coalesced patch (changes merged while the client was "
        "behind): the offset of the state it applies to. Absent: offset - 1.")
    ops: list[PatchOp]


class CueEvent(BaseModel):
    show: str
    event: Literal["go", "pause", "resume", "stop", "panic"]
    id: str = Field(description="Unique per firing: clients run each id once.")
    start_time: float = Field(description="Server ms when it takes effect (go: actions "
                              "start; pause/resume: the freeze/thaw instant).")
    number: str | None = None
    name: str | None = None
    duration: float | None = Field(None, description="ms")
    group: str | None = Field(None, description="The group cue this one fired with.")
    actions: list[dict[str, Any]] | None = Field(
        None, description="Show actions (docs/shows.md), run from start_time.")
    shift: float | None = Field(None, description="resume: ms every paused cue moves later.")


class Cue(Message):
    type: Literal["cue"]
    channel: ChannelName
    epoch: str
    offset: int
    cue: CueEvent


class Pong(Message):
    type: Literal["pong"]
    t0: float
    server_time: float


ErrorCode = Literal[
    "bad_json",
    "binary_not_supported",
    "frame_too_large",
    "unknown_type",
    "invalid_message",
    "hello_required",
    "unsupported_protocol",
    "unknown_channel",
    "too_many_subscriptions",
    "rate_limited",
    "not_subscribed",
    "unauthorized",
    "forbidden",
    "unknown_display",
    "unknown_kind",
    "unknown_recipe",
    "unavailable",
    "internal_error",
]


class Error(Message):
    type: Literal["error"]
    code: ErrorCode
    message: str
    channel: str | None = None
    error_id: str | None = Field(None, description="With internal_error: the id the "
                                 "server logged the error under.")


ServerMessage = Annotated[Welcome | Snapshot | Patch | Cue | Pong | Error,
                          Field(discriminator="type")]


def protocol_json_schema() -> dict[str, Any]:
    client = TypeAdapter(ClientMessage).json_schema(ref_template="#/$defs/{model}")
    server = TypeAdapter(ServerMessage).json_schema(ref_template="#/$defs/{model}")
    defs = {**client.pop("$defs", {}), **server.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Holobazaar stream protocol v{PROTOCOL_VERSION}",
        "$defs": {**defs, "ClientMessage": client, "ServerMessage": server},
    }
