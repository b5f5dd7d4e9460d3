"""One client connection on `/ws`: reads and validates client frames, and writes the
hub's pre-encoded frames so a slow client never delays the others.

Under `holobazaar serve` (uvicorn with stream/fastws.py) fastws serves the connection
directly (`start_direct`, callbacks) and it is a hub `Follower`: the hub writes shared
frame bytes straight to its transport and merges what it misses while behind. Under any
other ASGI server it runs behind the Starlette route (`run`) with a bounded queue and a
writer task doing ASGI sends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from holobazaar import edges, jsonlimits
from holobazaar.channels import base_channel, display_channel, is_private, language_of
from holobazaar.stream.broker import now_ms
from holobazaar.stream.channel import UnknownChannel, encode
from holobazaar.stream.fastws import StreamWebSocketProtocol
from holobazaar.stream.hub import Hub
from holobazaar.stream.protocol import (
    CLIENT_TYPES,
    PROTOCOL_VERSION,
    Dwell,
    Heartbeat,
    Hello,
    Leave,
    Ping,
    Reaction,
    client_message_adapter,
)
from holobazaar.stream.wire import Wire

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # repeated abuse
CLOSE_TRY_AGAIN = 1013  # slow consumer: reconnect and resume from your offset
CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True)
class StreamLimits:
    max_frame_bytes: int = 64 * 1024
    max_subscriptions: int = 32
    send_buffer_bytes: int = 1024 * 1024
    rate: float = 20.0
    burst: int = 40
    max_errors: int = 10
    error_window: float = 60.0
    heartbeat_interval: float = 5.0
    # Reactions and dwell reports have their own, slower bucket (docs/pulse.md).
    reaction_rate: float = 1.0
    reaction_burst: int = 5

    def announce(self) -> dict:
        return {
            "max_frame_bytes": self.max_frame_bytes,
            "max_subscriptions": self.max_subscriptions,
            "rate": self.rate,
            "burst": self.burst,
            "heartbeat_interval_ms": int(self.heartbeat_interval * 1000),
            "reaction_rate": self.reaction_rate,
            "reaction_burst": self.reaction_burst,
        }


class ChannelAuth(Protocol):
    """Accounts' hook (holobazaar.accounts.stream.StreamAuth): who a hello token belongs to,
    and whether that principal (None: anonymous) may join a channel."""

    async def authenticate(self, token: str) -> Any | None: ...

    def authorize(self, principal: Any | None, channel: str) -> bool: ...


class ReactionSink(Protocol):
    """Pulse's hook (holobazaar.pulse.service.PulseService): takes a reaction or dwell report
    the connection has checked (subscribed display, within the rate). Returns None when
    counted, else (error code, reason). Must be quick: it runs on the event loop."""

    def accept(self, message: Reaction | Dwell) -> tuple[str, str] | None: ...




class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")  # two per connection

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, channel: str | None = None,
                 error_id: str | None = None, reaction: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.channel = code, message, channel
        self.error_id = error_id
        self.reaction = reaction  # the refused reaction's own id, when it had one


class Connection:
    """Implements the hub's Subscriber (`send_frame` never blocks), and its Follower when
    the server gives raw transport access."""

    # Slots, not a __dict__: 10,000 connections on a node, ~0.7 KB less each.
    __slots__ = ("_bucket", "_busy", "_closed", "_closing", "_errors", "_inbox", "_queue",
                 "_queued_bytes", "_reaction_bucket", "_wakeup", "auth", "channels",
                 "greeted", "hub", "limit", "limits", "metrics", "principal", "raw",
                 "raw_frames", "reactions", "session", "wbits", "websocket")

    def __init__(self, websocket: WebSocket | None, hub: Hub, limits: StreamLimits,
                 metrics: dict[str, int] | None = None,
                 auth: ChannelAuth | None = None,
                 reactions: ReactionSink | None = None) -> None:
        self.websocket = websocket
        self.auth = auth
        self.reactions = reactions
        self.principal: Any | None = None
        self.hub = hub
        self.limits = limits
        self.metrics = metrics if metrics is not None else {}
        self.session = secrets.token_hex(8)
        self.channels: set[str] = set()
        self.greeted = False
        # The fallback path's queue and writer signals (none on the fast path).
        self._queue: deque[str] | list[str] = []  # a deque once the fallback path runs
        self._queued_bytes = 0
        self._wakeup: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        self._closing: tuple[int, str] | None = None
        self._bucket = TokenBucket(limits.rate, limits.burst)
        self._reaction_bucket = TokenBucket(limits.reaction_rate, limits.reaction_burst)
        self._errors: list[float] = []  # times of recent bad frames (at most max_errors)
        self.wbits = 0
        self.limit = limits.send_buffer_bytes
        self._busy: asyncio.Task | None = None  # direct mode: a hello being handled
        self._inbox: list[dict] = []  # direct mode: frames waiting for that hello
        self.raw: StreamWebSocketProtocol | None = None
        self.raw_frames = False  # True on the fast path (hub.follows)

    # ---- Follower (the fast path) --------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.raw is not None
        self.raw.write(data)

    def writable(self) -> bool:
        return self.raw is not None and self.raw.is_writable()

    def buffered(self) -> int:
        return self.raw.buffered() if self.raw is not None else 0

    def overflow(self) -> None:
        self._count("slow_disconnects")
        self.close(CLOSE_TRY_AGAIN, "slow consumer: resume from your last offset")

    def resume_writing(self) -> None:
        """The transport drained (fastws): catch up on every channel in one go."""
        if self._closing is None and self.channels:
            self.hub.resume(self, list(self.channels))

    # ---- Subscriber ----------------------------------------------------------------

    def send_frame(self, frame: str) -> None:
        if self._closing is not None:
            return
        if self.raw is not None:
            if self.raw.buffered() > self.limit:
                self.overflow()
                return
            self.raw.write(Wire(frame.encode()).frame(self.wbits))
            return
        size = len(frame)
        if self._queued_bytes + size > self.limits.send_buffer_bytes and self._queue:
            self._count("slow_disconnects")
            self.close(CLOSE_TRY_AGAIN, "slow consumer: resume from your last offset")
            return
        self._queue.append(frame)
        self._queued_bytes += size
        if self._wakeup is not None:
            self._wakeup.set()

    def send(self, message: dict) -> None:
        self.send_frame(encode(message))

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Stop the connection. With flush, frames already queued (an error frame saying
        why) go out first; without, they are dropped (a slow consumer gets no more)."""
        if self._closing is None:
            self._closing = (code, reason)
            self._leave_all()
            if self.raw is not None:
                self.raw.close(code, reason)
                return
            if not flush:
                self._queue.clear()
                self._queued_bytes = 0
            if self._wakeup is not None and self._closed is not None:
                self._wakeup.set()
                self._closed.set()

    # ---- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        assert self.websocket is not None  # run() serves an ASGI WebSocket
        await self.websocket.accept()
        self._count("connections_total")
        self._wakeup, self._closed = asyncio.Event(), asyncio.Event()
        self._queue = deque()
        self.send(self._welcome())
        writer = asyncio.create_task(self._writer(), name=f"ws-writer-{self.session}")
        reader = asyncio.create_task(self._reader(), name=f"ws-reader-{self.session}")
        closed = asyncio.create_task(self._closed.wait())
        try:
            await asyncio.wait({writer, reader, closed}, return_when=asyncio.FIRST_COMPLETED)
            if self._closing is not None and not writer.done():
                # Give queued frames (the error that explains the close) a moment to go out.
                await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
        finally:
            self._leave_all()
            for task in (reader, writer, closed):
                task.cancel()
            await asyncio.gather(reader, writer, closed, return_exceptions=True)
            await self._close_socket()

    def _welcome(self) -> dict:
        return {"type": "welcome", "protocol": PROTOCOL_VERSION, "session": self.session,
                "server_time": now_ms(), "limits": self.limits.announce()}

    # ---- direct mode: callbacks from fastws, no task while idle ---------------------

    def start_direct(self, raw: StreamWebSocketProtocol) -> None:
        """Serve a connection fastws accepted itself: messages arrive as callbacks; only a
        `hello` (which may wait for auth and history) runs as a short task, and frames
        that arrive meanwhile wait for it, in order."""
        self.raw, self.raw_frames, self.wbits = raw, True, raw.wbits
        raw.listener = self
        self._count("connections_total")
        self.send(self._welcome())

    def on_message(self, message: dict) -> None:
        if self._closing is not None:
            return
        if self._busy is not None:
            self._inbox.append(message)
            if self.raw is not None:
                self.raw.transport.pause_reading()  # one hello at a time, in order
            return
        try:
            msg = self._parse(message)
            if isinstance(msg, Hello):
                self._busy = asyncio.get_running_loop().create_task(self._run_hello(msg))
            else:
                self._dispatch(msg)
        except ProtocolError as exc:
            self._error(exc)
        except Exception as exc:  # the edge: a bug never reaches uvicorn's transport
            self._internal_error(exc)

    async def _run_hello(self, msg: Hello) -> None:
        try:
            await self._hello(msg)
        except ProtocolError as exc:
            self._error(exc)
        except Exception as exc:
            self._internal_error(exc)
        finally:
            self._busy = None
        if self.raw is not None and self._closing is None:
            self.raw.transport.resume_reading()
        while self._inbox and self._busy is None and self._closing is None:
            self.on_message(self._inbox.pop(0))

    def on_lost(self) -> None:
        if self._closing is None:
            self._closing = (CLOSE_NORMAL, "")
        self._leave_all()
        self._inbox.clear()
        if self._busy is not None:
            self._busy.cancel()

    async def _close_socket(self) -> None:
        code, reason = self._closing or (CLOSE_NORMAL, "")
        if self.websocket is not None and (
                self.websocket.application_state == WebSocketState.CONNECTED):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT)

    async def _writer(self) -> None:
        ws, wakeup, queue = self.websocket, self._wakeup, self._queue
        # run() set these up (the fallback path) before it started this task.
        assert ws is not None and wakeup is not None and isinstance(queue, deque)
        while True:
            await wakeup.wait()
            wakeup.clear()
            while queue:
                frame = queue.popleft()
                self._queued_bytes -= len(frame)
                await ws.send_text(frame)
            if self._closing is not None:
                return

    async def _reader(self) -> None:
        ws = self.websocket
        assert ws is not None  # run() serves an ASGI WebSocket
        while self._closing is None:
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                await self._handle_raw(message)
            except ProtocolError as exc:
                self._error(exc)
            except Exception as exc:
                self._internal_error(exc)

    # ---- client messages -----------------------------------------------------------

    async def _handle_raw(self, message: Mapping[str, Any]) -> None:
        msg = self._parse(message)
        if isinstance(msg, Hello):
            await self._hello(msg)
        else:
            self._dispatch(msg)

    def _parse(self, message: Mapping[str, Any]) -> Any:
        """A client frame, checked (size, rate, JSON, schema, hello first)."""
        text = message.get("text")
        if text is None:
            raise ProtocolError("binary_not_supported", "send JSON text frames")
        if len(text) > self.limits.max_frame_bytes or (
            len(text.encode("utf-8")) > self.limits.max_frame_bytes
        ):
            raise ProtocolError("frame_too_large",
                                f"frames are limited to {self.limits.max_frame_bytes} bytes")
        if not self._bucket.take():
            self._count("rate_limited")
            raise ProtocolError("rate_limited", f"at most {self.limits.rate:g} messages/s")
        try:
            raw = jsonlimits.loads(text)
        except jsonlimits.JSONInputError as exc:
            raise ProtocolError("bad_json", f"not JSON: {exc.message}") from None
        if not isinstance(raw, dict):
            raise ProtocolError("invalid_message", "a message is a JSON object")
        kind = raw.get("type")
        if kind is not None and not isinstance(kind, str):
            raise ProtocolError("invalid_message", "type: must be a string")
        if kind not in CLIENT_TYPES:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}")
        try:
            msg = client_message_adapter.validate_python(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "message"
            raise ProtocolError("invalid_message", f"{kind}: {where}: {first['msg']}") from None
        if not self.greeted and not isinstance(msg, Hello):
            raise ProtocolError("hello_required", "send hello first")
        return msg

    def _dispatch(self, msg: Any) -> None:
        """Every message but hello: handled at once, on the event loop."""
        if isinstance(msg, Ping):
            self.send({"type": "pong", "t0": msg.t0, "server_time": now_ms()})
        elif isinstance(msg, Heartbeat):
            self._heartbeat(msg)
        elif isinstance(msg, Leave):
            self._leave(msg)
        elif isinstance(msg, Reaction | Dwell):
            self._reaction(msg)

    async def _hello(self, msg: Hello) -> None:
        if msg.protocol != PROTOCOL_VERSION:
            self._error(ProtocolError("unsupported_protocol",
                                      f"this server speaks protocol {PROTOCOL_VERSION}"))
            self.close(CLOSE_POLICY, "unsupported protocol", flush=True)
            return
        if msg.token is not None and not await self._authenticate(msg.token):
            return
        self.greeted = True
        for sub in msg.subscribe:
            if sub.channel not in self.channels and (
                len(self.channels) >= self.limits.max_subscriptions
            ):
                raise ProtocolError("too_many_subscriptions",
                                    f"at most {self.limits.max_subscriptions} channels",
                                    sub.channel)
            # Before the existence check, so private channel names cannot be probed.
            if not self._authorized(sub.channel):
                self._error(ProtocolError("forbidden", "not allowed", sub.channel))
                continue
            name = sub.channel
            if not self.hub.has_channel(name) and language_of(name) is not None:
                # A language the market does not offer: its default language's channel
                # (the frames name that channel; docs/protocol.md, Languages).
                name = base_channel(name)
            if not self.hub.has_channel(name):
                self._error(ProtocolError("unknown_channel", "no such channel", sub.channel))
                continue
            self.hub.unsubscribe(name, self)
            self.channels.add(name)
            try:
                how = await self.hub.subscribe(name, self, sub.epoch, sub.offset)
            except UnknownChannel:
                self.channels.discard(name)
                self._error(ProtocolError("unknown_channel", "no such channel", sub.channel))
                continue
            self._count(f"subscribe_{how}")

    # ---- accounts hook (docs/protocol.md, "Signed-in connections") -----------------

    async def _authenticate(self, token: str) -> bool:
        principal = await self.auth.authenticate(token) if self.auth is not None else None
        if principal is None:
            self._count("error_unauthorized")
            self.send({"type": "error", "code": "unauthorized", "message": "invalid token"})
            self.close(CLOSE_POLICY, "unauthorized", flush=True)
            return False
        self.principal = principal
        return True

    def _authorized(self, channel: str) -> bool:
        if self.auth is None:
            return not is_private(channel)  # no auth hook: private stays closed
        return self.auth.authorize(self.principal, channel)

    def _heartbeat(self, msg: Heartbeat) -> None:
        if msg.channel not in self.channels:
            raise ProtocolError("not_subscribed", "heartbeat for a channel you did not join",
                                msg.channel)
        match = self.hub.check_hash(msg.channel, msg.offset, msg.state_hash)
        if match is False:
            # The client renders something other than the state at that offset: resync.
            self._count("client_drift")
            self.hub.stats["drift"] += 1
            if self.raw_frames:  # a follower: it continues from the snapshot's offset
                self.hub.resnapshot(msg.channel, self)
            else:
                self.send_frame(self.hub.snapshot_frame(msg.channel))
            self.hub.report_drift(msg.channel, msg.offset, msg.state_hash)
        if msg.cue is not None:
            self.hub.report_cue(msg.channel, self.session, msg.cue.id, msg.cue.executed_at)

    def _reaction(self, msg: Reaction | Dwell) -> None:
        # A reaction with an id hears back either way: `ack` (counted, or a resend counted
        # before) or an error carrying the id; the client's offline queue keeps it until then.
        rid = msg.id if isinstance(msg, Reaction) else None
        try:
            self._take_reaction(msg, rid)
        except ProtocolError as exc:
            exc.reaction = rid
            raise

    def _take_reaction(self, msg: Reaction | Dwell, rid: str | None) -> None:
        channel = display_channel(msg.market, msg.display)
        if channel not in self.channels and not any(
                base_channel(joined) == channel for joined in self.channels):  # ?lang=
            # Only displays the visitor is looking at: a script cannot spread taps around.
            if self.hub.has_channel(channel):
                raise ProtocolError("not_subscribed", "react to a display you joined", channel)
            raise ProtocolError("unknown_display", "no such display", channel)
        if not self._reaction_bucket.take():
            # An honest visitor tapping fast: say so, but this never counts towards the
            # bad-frame limit that closes a connection.
            self._count(f"{msg.type}_rate_limited")
            self.send({"type": "error", "code": "rate_limited", "channel": channel,
                       "message": f"at most {self.limits.reaction_rate:g} {msg.type} "
                                  f"messages/s (bursts of {self.limits.reaction_burst})",
                       **({"reaction": rid} if rid else {})})
            return
        if self.reactions is None:
            raise ProtocolError("unavailable", "reactions are not collected here", channel)
        try:
            refusal = self.reactions.accept(msg)
        except Exception:  # a bug in the sink must not end this visitor's stream
            log.exception("reaction sink failed")
            refusal = ("unavailable", "reaction not recorded, please try again later")
        if refusal is None:
            self._count(f"{msg.type}_accepted")
            if rid:
                self.send({"type": "ack", "reaction": rid})
            return
        code, reason = refusal
        self._count(f"{msg.type}_refused_{code}")
        if code == "rate_limited":  # the per-device limit: same courtesy as above
            self.send({"type": "error", "code": code, "message": reason, "channel": channel,
                       **({"reaction": rid} if rid else {})})
            return
        raise ProtocolError(code, reason, channel)

    def _leave(self, msg: Leave) -> None:
        if msg.channel is None:
            self.close(CLOSE_NORMAL, "bye")
            return
        if msg.channel not in self.channels:
            raise ProtocolError("not_subscribed", "not subscribed", msg.channel)
        self.hub.unsubscribe(msg.channel, self)
        self.channels.discard(msg.channel)

    def _leave_all(self) -> None:
        for channel in list(self.channels):
            self.hub.unsubscribe(channel, self)
        self.channels.clear()

    def _error(self, exc: ProtocolError) -> None:
        self._count(f"error_{exc.code}")
        body = {"type": "error", "code": exc.code, "message": exc.message}
        if exc.channel:
            body["channel"] = exc.channel
        if exc.error_id:
            body["error_id"] = exc.error_id
        if exc.reaction:
            body["reaction"] = exc.reaction
        self.send(body)
        now = time.monotonic()
        self._errors.append(now)
        self._errors = [t for t in self._errors if t >= now - self.limits.error_window]
        if len(self._errors) >= self.limits.max_errors:
            self._count("policy_closes")
            self.close(CLOSE_POLICY, "too many bad frames", flush=True)

    def _internal_error(self, exc: Exception) -> None:
        """A bug while handling a frame: one log line and a count (holobazaar.edges), an
        `internal_error` frame with the id; it counts towards the bad-frame limit."""
        error_id = edges.report("frame", exc, session=self.session)
        self._error(ProtocolError("internal_error", "internal error", error_id=error_id))

    def _count(self, key: str) -> None:
        self.metrics[key] = self.metrics.get(key, 0) + 1
