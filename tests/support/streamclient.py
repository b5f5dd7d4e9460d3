"""A small v1 protocol client for tests and benchmarks: real WebSocket, real frames.

It keeps per-channel (epoch, offset, state) exactly as a browser client must: snapshots
replace, patches apply only in offset order (a gap or duplicate is recorded as an error)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import websockets

from holobazaar.canonical import state_hash


@dataclass
class ChannelView:
    epoch: str
    offset: int
    state: dict
    applied: list[int] = field(default_factory=list)  # offsets of patches applied


class StreamClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.welcome: dict | None = None
        self.views: dict[str, ChannelView] = {}
        self.frames: list[dict] = []
        self.errors: list[dict] = []
        self.violations: list[str] = []
        self.snapshots = 0
        self.cues: list[dict] = []
        self._inbox: asyncio.Queue[dict] = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    async def connect(self, **kwargs) -> dict:
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=10, **kwargs)
        self.welcome = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        assert self.welcome["type"] == "welcome", self.welcome
        self._reader = asyncio.create_task(self._read())
        return self.welcome

    async def connect_stalled(self, port: int) -> dict:
        """Connect over a socket with a tiny receive buffer (which also turns off the
        kernel's autotuning) and a one-frame queue; cancel `_reader` afterwards and the
        socket fills and stays full: a client that stopped reading."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        return await self.connect(max_queue=1, sock=sock, compression=None)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                self.frames.append(message)
                self._apply(message)
                await self._inbox.put(message)

    def _apply(self, message: dict) -> None:
        kind = message["type"]
        if kind == "snapshot":
            self.snapshots += 1
            self.views[message["channel"]] = ChannelView(
                message["epoch"], message["offset"], message["state"])
            if state_hash(message["state"]) != message["state_hash"]:
                self.violations.append(f"snapshot hash mismatch at {message['offset']}")
        elif kind == "patch":
            view = self.views.get(message["channel"])
            if view is None:
                self.violations.append(f"patch before snapshot: {message['offset']}")
            elif message["epoch"] != view.epoch or (
                    message.get("from", message["offset"] - 1) != view.offset):
                # `from`: the base offset of a coalesced patch (several changes merged)
                self.violations.append(
                    f"patch {message['epoch']}/{message['offset']} does not follow "
                    f"{view.epoch}/{view.offset}")
            else:
                view.state = jsonpatch.apply_patch(view.state, message["ops"])
                view.offset = message["offset"]
                view.applied.append(message["offset"])
        elif kind == "cue":
            # A cue takes an offset in the channel's log without changing its state.
            view = self.views.get(message["channel"])
            self.cues.append(message)
            if view is not None:
                if message["epoch"] != view.epoch or message["offset"] != view.offset + 1:
                    self.violations.append(
                        f"cue {message['epoch']}/{message['offset']} does not follow "
                        f"{view.epoch}/{view.offset}")
                else:
                    view.offset = message["offset"]
        elif kind == "error":
            self.errors.append(message)

    async def send(self, message: dict | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def hello(self, *channels: str, resume: bool = False, **extra) -> None:
        subs = []
        for channel in channels:
            view = self.views.get(channel)
            if resume and view is not None:
                subs.append({"channel": channel, "epoch": view.epoch, "offset": view.offset})
            else:
                subs.append({"channel": channel})
        await self.send({"type": "hello", "protocol": 1, "subscribe": subs, **extra})

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict:
        """The next frame (of a kind), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._inbox.get()
                if kind is None or message["type"] == kind:
                    return message

    async def wait_offset(self, channel: str, offset: int, timeout: float = 5.0) -> ChannelView:
        async with asyncio.timeout(timeout):
            while True:
                view = self.views.get(channel)
                if view is not None and view.offset >= offset:
                    return view
                await asyncio.sleep(0.005)

    async def quiet(self, seconds: float = 0.2) -> list[dict]:
        """Frames that arrive within `seconds` (drains the inbox)."""
        got = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    got.append(await self._inbox.get())
        return got

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._inbox = asyncio.Queue()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None


async def joined(url: str, *channels: str) -> StreamClient:
    """A client connected to `url` and subscribed to `channels`, holding their snapshots."""
    client = StreamClient(url)
    await client.connect()
    await client.hello(*channels)
    for _ in channels:
        await client.next("snapshot")
    return client
