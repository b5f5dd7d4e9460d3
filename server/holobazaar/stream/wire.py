"""WebSocket frames built once and written as bytes to many connections.

A server frame (RFC 6455 section 5.2) is a header plus the unmasked payload, so the
hub encodes each message once and every subscriber's transport gets the same bytes.
permessage-deflate (RFC 7692) is shared the same way: the `/ws` protocol always
negotiates `server_no_context_takeover`, so a message compressed once (fresh deflate
stream, no dictionary carried over) is valid for every connection that accepted the
extension with the same window size. Compression is a per-message choice (RSV1), so a
frame is compressed only when it is worth it: payloads of at least DEFLATE_MIN_BYTES
(snapshots, big coalesced patches); small patches and cues go out as they are, which
costs each client nothing to decode and the server nothing to compress
(docs/performance.md has the measurements).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

DEFLATE_MIN_BYTES = 1024
DEFLATE_LEVEL = 6
_TAIL = b"\x00\x00\xff\xff"


def dumps(message: Any) -> bytes:
    return orjson.dumps(message)


def header(opcode_byte: int, size: int) -> bytes:
    if size < 126:
        return bytes((opcode_byte, size))
    if size < 65536:
        return struct.pack("!BBH", opcode_byte, 126, size)
    return struct.pack("!BBQ", opcode_byte, 127, size)


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame (FIN | opcode 1)."""
    return header(0x81, len(payload)) + payload


def deflate_payload(payload: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -wbits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(_TAIL) else data


class Wire:
    """One message's payload and its frames, built on first use and then shared."""

    __slots__ = ("_deflated", "_plain", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._plain: bytes | None = None
        self._deflated: dict[int, bytes] | None = None

    @classmethod
    def of(cls, message: Any) -> Wire:
        return cls(dumps(message))

    @property
    def text(self) -> str:
        return self.payload.decode()

    def frame(self, wbits: int = 0) -> bytes:
        """The frame for a connection whose shared deflate window is `wbits` (0: the
        connection did not negotiate permessage-deflate)."""
        if wbits and len(self.payload) >= DEFLATE_MIN_BYTES:
            cache = self._deflated
            if cache is None:
                cache = self._deflated = {}
            frame = cache.get(wbits)
            if frame is None:
                data = deflate_payload(self.payload, wbits)
                frame = cache[wbits] = header(0xC1, len(data)) + data  # FIN | RSV1 | text
            return frame
        plain = self._plain
        if plain is None:
            plain = self._plain = text_frame(self.payload)
        return plain
