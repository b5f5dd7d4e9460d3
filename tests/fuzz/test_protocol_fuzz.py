"""Property-based fuzzing of the v1 stream protocol against `holobazaar serve` (its real
`/ws` path, stream/fastws.py) on a loopback port.

Each example is a batch of frames on one connection: valid messages generated from the
message models (stream/protocol.py) and mutations of them (a field of the wrong type,
`{"type": ["hello"]}`, missing and unknown fields, deep nesting, oversized, lone
surrogates, NaN, binary frames, non-objects, garbage text). For every frame the test
predicts from docs/protocol.md what must happen - an `error` frame with a given code, a
valid answer (or none, for heartbeats, leaves and taps), or the documented close - and
checks it; every frame the server sends must be a valid server message (the models'
`ServerMessage`). After each batch the server's log holds no traceback and a normal client
is still served."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from fuzz.budget import fuzz_settings
from holobazaar.stream.protocol import CLIENT_TYPES, ServerMessage, client_message_adapter

from support.processes import ServeProcess

MARKET = "greenhaven"
DISPLAYS = ["zonneveld-greens", "bijenhof-honey", "kippenlust-eggs"]
CHANNELS = [f"market/{MARKET}", f"market/{MARKET}/zone/orchard-row",
            f"market/{MARKET}/pulse", *(f"market/{MARKET}/display/{d}" for d in DISPLAYS)]
MAX_FRAME = 64 * 1024  # welcome.limits.max_frame_bytes (checked against the welcome)
MAX_ERRORS = 10  # docs/protocol.md: max_errors within a minute close with 1008
MAX_DEPTH = 64
# Stand-ins for real API tokens in generated hellos; `play` puts the token in (fixture).
TOKENS = {"@performer-token@": ("performer",), "@curator-token@": ("curator",)}
PRIVATE = [f"market/{MARKET}/show/harvest-collective",
           f"market/{MARKET}/preview/{DISPLAYS[0]}"]
SYNC_T0 = 7.0e12  # pings the test sends to mark "everything for this frame has arrived"
server_message = TypeAdapter(ServerMessage)

# Errors a well-formed message may still get (docs/protocol.md, "Limits and errors").
SEMANTIC = {"not_subscribed", "unknown_display", "unknown_kind", "unknown_recipe",
            "unavailable", "rate_limited", "unknown_channel", "forbidden",
            "too_many_subscriptions"}


# ---- generating frames -----------------------------------------------------------------

idents = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z")
channels = st.one_of(
    st.sampled_from(CHANNELS),
    st.builds(lambda m, kind, x: f"market/{m}/{kind}/{x}", st.sampled_from([MARKET, "nowhere"]),
              st.sampled_from(["zone", "display", "show", "preview"]), idents),
    st.builds(lambda m: f"market/{m}", idents),
)
devices = st.from_regex(r"\A[A-Za-z0-9_-]{16,24}\Z")
numbers = st.one_of(st.integers(-(2**63), 2**63), st.floats(allow_nan=False,
                                                             allow_infinity=False))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)


def optional(**fields: st.SearchStrategy) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional=fields)


def message(kind: str, required: dict, **optional_fields) -> st.SearchStrategy[dict]:
    return st.builds(lambda a, b: {"type": kind, **a, **b}, st.fixed_dictionaries(required),
                     optional(**optional_fields))


subscriptions = st.builds(
    lambda c, extra: {"channel": c, **extra}, channels,
    optional(epoch=st.text(max_size=12), offset=st.integers(0, 50)))
valid_messages = st.one_of(
    message("hello", {"protocol": st.just(1)},
            subscribe=st.lists(subscriptions, max_size=4),
            client=st.fixed_dictionaries({}, optional={"device": st.sampled_from(
                ["phone", "headset", "desktop", "toaster"])})),
    message("hello", {"protocol": st.integers(-3, 5)}),
    message("hello", {"protocol": st.just(1), "token": st.text(min_size=1, max_size=40)}),
    message("hello", {"protocol": st.just(1), "token": st.sampled_from(sorted(TOKENS))},
            subscribe=st.lists(st.builds(lambda c: {"channel": c},
                                         st.sampled_from(PRIVATE) | channels), max_size=3)),
    message("ping", {"t0": numbers}),
    message("heartbeat", {"channel": channels, "offset": st.integers(0, 100),
                          "state_hash": st.from_regex(r"\A[0-9a-f]{64}\Z")},
            cue=st.fixed_dictionaries({"id": st.text(min_size=1, max_size=20),
                                       "executed_at": numbers})),
    message("leave", {}, channel=channels),
    message("reaction", {"market": st.sampled_from([MARKET, "nowhere"]),
                         "display": st.sampled_from([*DISPLAYS, "nope"]),
                         "kind": st.sampled_from(["love", "wow", "hungry", "learn", "meh"]),
                         "device": devices},
            text=st.text(max_size=40), recipe=idents),
    message("dwell", {"market": st.just(MARKET), "display": st.sampled_from(DISPLAYS),
                      "seconds": st.floats(0, 1000), "device": devices}),
)


def nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated(draw) -> dict | list | str | int | None:
    """A valid message with one thing broken."""
    msg = dict(draw(valid_messages))
    how = draw(st.sampled_from(["retype", "drop", "extra", "type", "deep", "wrap"]))
    keys = sorted(msg)
    if how == "retype":
        msg[draw(st.sampled_from(keys))] = draw(json_values)
    elif how == "drop":
        msg.pop(draw(st.sampled_from(keys)))
    elif how == "extra":
        msg[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    elif how == "type":
        msg["type"] = draw(st.one_of(
            st.lists(st.sampled_from(sorted(CLIENT_TYPES)), min_size=1, max_size=2),
            st.fixed_dictionaries({"$ne": st.integers()}), numbers, st.booleans(),
            st.text(max_size=12), st.just("HELLO"), st.just("welcome")))
    elif how == "deep":
        msg[draw(st.sampled_from(keys))] = nest(draw(json_values),
                                                draw(st.integers(1, 3 * MAX_DEPTH)))
    else:
        return draw(st.one_of(st.just([msg]), st.just(None), numbers, st.text(max_size=10)))
    return msg


@dataclass(frozen=True)
class Frame:
    """What goes on the wire: text (as the client wrote it) or bytes (a binary frame)."""

    data: str | bytes

    def __repr__(self) -> str:
        shown = self.data if len(self.data) < 300 else self.data[:300]
        return f"Frame({shown!r}{'...' if shown is not self.data else ''}, len={len(self.data)})"


@st.composite
def encoded(draw, value: Any) -> Frame:
    return Frame(json.dumps(value, ensure_ascii=draw(st.booleans())))


raw_frames = st.one_of(
    st.binary(max_size=64).map(Frame),
    st.text(max_size=40).map(Frame),  # mostly not JSON
    st.integers(MAX_DEPTH + 1, 6000).map(lambda n: Frame("[" * n + "]" * n)),
    st.integers(1, 200).map(lambda n: Frame('{"type": "ping", "t0": ' + "[" * n + "1"
                                            + "]" * n + "}")),
    st.sampled_from(['{"type": "ping", "t0": NaN}', '{"type": "ping", "t0": Infinity}',
                     '{"type": "ping", "t0": 1e400}', '{"type": "ping", "t0": -0}',
                     '{"type": "hello", "protocol": 1, "client": {"x": "\\ud800"}}',
                     '{"type": "ping", "t0": 1, "type": "ping"}', '{"type": "ping"',
                     '{"type": "ping", "t0": 1}\x00', "\ufeff{}", "",
                     '{"type": "hello", "protocol": 1e0}', '{"type": "hello", "protocol": true}',
                     '{"type": "ping", "t0": ' + "9" * 5000 + "}"]).map(Frame),
    st.integers(MAX_FRAME - 30, MAX_FRAME + 30).map(
        lambda n: Frame('{"type": "ping", "t0": 1, "x": "' + "a" * n + '"}')),
)
frames = st.one_of(valid_messages.flatmap(encoded), mutated().flatmap(encoded), raw_frames)
batches = st.lists(frames, min_size=1, max_size=8)


# ---- what the documentation says must happen -------------------------------------------

def depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def expected(frame: Frame, greeted: bool) -> tuple[str, Any]:
    """("error", code) | ("hello", msg) | ("close", code) | ("bye", None) | ("ok", msg),
    from the rules of docs/protocol.md in the order the server applies them."""
    if isinstance(frame.data, bytes):
        return "error", "binary_not_supported"
    if len(frame.data.encode("utf-8", "surrogatepass")) > MAX_FRAME:
        return "error", "frame_too_large"
    if frame.data.count("[") + frame.data.count("{") > 20 * MAX_DEPTH:
        return "error", "bad_json"  # deeper than the limit by construction (raw_frames)
    try:
        value = json.loads(frame.data)
    except (ValueError, RecursionError):
        return "error", "bad_json"
    if depth(value) > MAX_DEPTH or has_lone_surrogate(value):
        return "error", "bad_json"
    if not isinstance(value, dict):
        return "error", "invalid_message"
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        return "error", "invalid_message"
    if kind not in CLIENT_TYPES:
        return "error", "unknown_type"
    try:
        msg = client_message_adapter.validate_python(value)
    except ValidationError:
        return "error", "invalid_message"
    if kind != "hello":
        if not greeted:
            return "error", "hello_required"
        return ("bye", None) if kind == "leave" and msg.channel is None else ("ok", msg)
    if msg.protocol != 1:
        return "close", "unsupported_protocol"
    if msg.token is not None and msg.token not in TOKENS:
        return "close", "unauthorized"  # made-up tokens
    return "hello", msg


# ---- the client side -------------------------------------------------------------------

@dataclass
class Session:
    ws: ClientConnection
    received: list[dict] = field(default_factory=list)
    errors: int = 0  # errors that count towards max_errors
    sync: int = 0

    def recv(self) -> dict:
        raw = self.ws.recv(timeout=10)
        assert isinstance(raw, str), f"binary frame from the server: {raw!r}"
        message = json.loads(raw)
        try:
            server_message.validate_python(message)
        except ValidationError as exc:
            raise AssertionError(f"server frame violates the protocol: {message}\n{exc}") from exc
        if message["type"] == "pong" and not math.isfinite(message["t0"]):
            raise AssertionError(f"pong with a non-finite t0: {message}")
        self.received.append(message)
        return message

    def until_error(self) -> dict:
        while True:
            message = self.recv()
            if message["type"] == "error":
                return message

    def until_synced(self) -> tuple[list[dict], int | None]:
        """Ping and read up to its pong: what arrived before it answers the last frame.
        Also returns the close code when the server closed the connection instead."""
        self.sync += 1
        t0 = SYNC_T0 + self.sync
        got: list[dict] = []
        try:
            self.ws.send(json.dumps({"type": "ping", "t0": t0}))
            while True:
                message = self.recv()
                if message["type"] == "pong" and message["t0"] == t0:
                    return got, None
                got.append(message)
        except ConnectionClosed as exc:
            return got, exc.rcvd.code if exc.rcvd is not None else None

    def closed_with(self) -> int | None:
        """The close code once the server has closed (reading what is left)."""
        try:
            while True:
                self.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None


def count(session: Session, answers: list[dict], allowed: set[str]) -> None:
    for message in answers:
        if message["type"] == "error":
            assert message["code"] in allowed, message
            if message["code"] != "rate_limited":  # taps: never counted (docs/protocol.md)
                session.errors += 1


def play(served: ServeProcess, batch: list[Frame]) -> None:
    with connect(served.ws_url, open_timeout=10, max_size=None) as ws:
        session = Session(ws)
        welcome = session.recv()
        assert welcome["type"] == "welcome"
        assert welcome["limits"]["max_frame_bytes"] == MAX_FRAME
        greeted = False
        for frame in batch:
            kind, detail = expected(frame, greeted)
            data = frame.data
            if isinstance(data, str):
                for mark, roles in TOKENS.items():
                    data = data.replace(mark, served.token(roles, (MARKET,)))
            ws.send(data)
            if kind == "error":
                error = session.until_error()
                assert error["code"] == detail, (frame, error)
                session.errors += 1
            elif kind == "close":
                assert session.until_error()["code"] == detail, frame
                assert session.closed_with() == 1008, frame
                return
            elif kind == "bye":
                assert session.closed_with() == 1000, frame
                return
            else:
                greeted = greeted or kind == "hello"
                if session.errors >= MAX_ERRORS:
                    break
                answers, closed = session.until_synced()
                count(session, answers, SEMANTIC)
                if closed is not None:
                    # Only the documented close: a hello's refused subscriptions count
                    # towards max_errors too.
                    assert closed == 1008 and session.errors >= MAX_ERRORS, (
                        frame, closed, session.errors, session.received[-3:])
                    return
                if kind == "ok" and detail.type == "ping":
                    assert any(m["type"] == "pong" and m["t0"] == detail.t0
                               for m in session.received), frame
            if session.errors >= MAX_ERRORS:
                break
        if session.errors >= MAX_ERRORS:
            # docs/protocol.md: max_errors bad frames within a minute close with 1008.
            assert session.closed_with() == 1008, session.received[-3:]
            return
        if greeted:
            answers, closed = session.until_synced()
            count(session, answers, SEMANTIC)
            assert closed is None, (closed, session.received[-3:])


def normal_client_is_served(served: ServeProcess) -> None:
    channel = f"market/{MARKET}/display/{DISPLAYS[0]}"
    with connect(served.ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        ws.send(json.dumps({"type": "hello", "protocol": 1,
                            "subscribe": [{"channel": channel}]}))
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "snapshot" and snapshot["channel"] == channel, snapshot
        ws.send(json.dumps({"type": "ping", "t0": 1}))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"


# ---- the properties --------------------------------------------------------------------

HELLO = Frame(json.dumps({"type": "hello", "protocol": 1,
                          "subscribe": [{"channel": CHANNELS[-1]}]}))


@pytest.fixture(scope="module")
def fuzz_server(served: ServeProcess) -> ServeProcess:
    return served


def check_batch(served: ServeProcess, batch: list[Frame]) -> None:
    mark = served.log_mark()
    play(served, batch)
    normal_client_is_served(served)
    assert served.alive()
    assert served.tracebacks(mark) == [], served.log()[-4000:]


@fuzz_settings(quick=25, deep=2000)
@given(batch=batches)
@example(batch=[Frame('{"type": ["hello"]}')])
@example(batch=[Frame('{"type": {"$ne": 1}}'), HELLO, Frame('{"type": ["hello"]}')])
@example(batch=[Frame("[" * 5000 + "]" * 5000)])
@example(batch=[HELLO, Frame('{"type": "ping", "t0": NaN}')])
@example(batch=[HELLO, Frame('{"type": "ping", "t0": 1e400}')])
def test_fuzzed_frames_before_and_after_hello(fuzz_server: ServeProcess, batch: list[Frame]):
    check_batch(fuzz_server, batch)


@fuzz_settings(quick=15, deep=1000)
@given(batch=st.lists(frames, min_size=1, max_size=7))
def test_fuzzed_frames_on_a_greeted_connection(fuzz_server: ServeProcess, batch: list[Frame]):
    check_batch(fuzz_server, [HELLO, *batch])


def test_a_frame_over_16_times_the_limit_closes_with_1009(fuzz_server: ServeProcess):
    mark = fuzz_server.log_mark()
    with connect(fuzz_server.ws_url, open_timeout=10, max_size=None) as ws:
        session = Session(ws)
        assert session.recv()["type"] == "welcome"
        ws.send('{"type": "ping", "t0": 1, "x": "' + "a" * (16 * MAX_FRAME) + '"}')
        assert session.closed_with() == 1009
    normal_client_is_served(fuzz_server)
    assert fuzz_server.tracebacks(mark) == []


def test_max_errors_close_the_connection_with_1008(fuzz_server: ServeProcess):
    check_batch(fuzz_server, [HELLO] + [Frame('{"type": ["hello"]}')] * MAX_ERRORS)
