"""Request body limits, enforced before anything reads, parses or authenticates a body.

`BodyLimits` is a plain ASGI middleware around the whole app. For each HTTP request it
finds the route's limit (`body_rules`: the first rule whose method and path match, else
the default) and then:

- a `Content-Length` over the limit is answered 413 at once: the app never runs, nothing
  of the body is read (uvicorn stops reading a body nobody asks for);
- a body without a length (chunked) is counted as the app receives it; the chunk that
  goes over the limit raises `BodyTooLarge` (an HTTPException, so FastAPI's body reading
  and every route that streams its body pass it on), answered 413.

A 413 closes the connection (`Connection: close`). Before it is sent, the rest of the body
is read and thrown away, up to `LINGER_BYTES` and `LINGER_SECONDS` (as nginx's lingering
close does): a connection closed with its body unread is reset by the kernel, and the reset
can reach the client before it has read the 413, so it sees "connection reset" instead of
the reason. A declared body larger than that, or one sent only after `Expect: 100-continue`,
is answered at once without reading any of it.
Anonymous callers get 413, not 401: the limit comes before authentication. `/ws` under
`holobazaar serve` never reaches this app (stream/fastws.py; frames are limited there by
max_frame_bytes); WebSocket scopes pass through. Limits and settings: docs/deploy.md."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from holobazaar.config import Settings

# Multipart framing around the files of an upload (boundaries, part headers, form fields).
MULTIPART_SLACK = 1 << 20
# How much of a refused body is still read (and dropped) so that the 413 arrives intact.
LINGER_BYTES = 16 << 20
LINGER_SECONDS = 5.0


@dataclass(frozen=True)
class BodyRule:
    """Bodies of `methods` (None: any) on paths matching `path` are capped at `limit`
    bytes; `setting` names the setting that changes the limit (HOLOBAZAAR_<SETTING>),
    shown in the 413 like the routes' own messages do."""

    methods: frozenset[str] | None
    path: re.Pattern[str]
    limit: int
    setting: str

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and bool(
            self.path.fullmatch(path))

    @property
    def detail(self) -> str:
        return f"request body larger than {self.limit} bytes ({self.setting})"


def body_rules(settings: Settings) -> tuple[list[BodyRule], BodyRule]:
    """The per-route limits and the default for every other route."""
    post, write = frozenset({"POST"}), frozenset({"POST", "PUT"})
    market = r"/api/v1/markets/[^/]+"
    rules = [
        # The signed inventory feed: whole snapshots of a market's stock.
        BodyRule(post, re.compile(r"/api/v1/inventory/[^/]+/events"),
                 settings.inventory_max_body, "inventory_max_body"),
        # A curator's file import (studio): the same cap as a feed snapshot.
        BodyRule(post, re.compile(rf"{market}/items/import"),
                 settings.inventory_max_body, "inventory_max_body"),
        # Asset uploads (multipart): the pipeline's own cap is per file, twice that in all.
        BodyRule(post, re.compile(r"/api/v1/assets"),
                 2 * settings.asset_max_upload_bytes + MULTIPART_SLACK,
                 "2 x asset_max_upload_bytes + 1 MiB"),
        # Stories, recipes, JSON-LD imports and visitors' submissions (stories/routes.py
        # reads these itself, refusing more than story_max_bytes).
        BodyRule(write, re.compile(rf"/api/v1/submissions|{market}/(stories|recipes)(/[^/]+)?"
                                   rf"|{market}/recipes-jsonld"),
                 settings.story_max_bytes, "story_max_bytes"),
    ]
    default = BodyRule(None, re.compile(".*"), settings.max_body_bytes,
                       "max_body_bytes")
    return rules, default


class BodyTooLarge(HTTPException):
    def __init__(self, rule: BodyRule) -> None:
        super().__init__(413, rule.detail, headers={"Connection": "close"})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The HTTP parser (h11/httptools) already refused a malformed length.
            return int(value) if value.isdigit() else None
    return None


def _awaits_continue(scope: Scope) -> bool:
    """The client sends its body only after a `100 Continue`, which reading would send."""
    return any(name == b"expect" and value.lower() == b"100-continue"
               for name, value in scope["headers"])


async def _discard_rest(receive: Receive, budget: int) -> None:
    """Read and drop what is left of a refused body: at most `budget` bytes, for at most
    LINGER_SECONDS (a client sending slowly is then cut off)."""
    with anyio.move_on_after(LINGER_SECONDS):
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return


async def _refuse(send: Send, rule: BodyRule) -> None:
    body = json.dumps({"detail": rule.detail}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    def __init__(self, app: ASGIApp, rules: list[BodyRule], default: BodyRule) -> None:
        self.app = app
        self.rules = rules
        self.default = default

    def rule_for(self, method: str, path: str) -> BodyRule:
        return next((r for r in self.rules if r.matches(method, path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule_for(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > rule.limit:
            if declared <= LINGER_BYTES and not _awaits_continue(scope):
                await _discard_rest(receive, declared)
            await _refuse(send, rule)
            return
        if declared is not None:  # within the limit: the server delivers no more than that
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.limit:
                    if message.get("more_body", False):
                        await _discard_rest(receive, LINGER_BYTES - received)
                    raise BodyTooLarge(rule)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:  # (an app that answered before reading all has had its say)
                await _refuse(send, rule)
