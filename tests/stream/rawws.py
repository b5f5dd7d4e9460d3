"""A bare RFC 6455 client on a blocking socket, for the `/ws` tests that look at frame bits
as the server sent them (RSV1, opcodes, close codes)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import struct
import zlib


class RawWebSocket:
    """A WebSocket client that shows each frame as it came."""

    def __init__(self, port: int, extensions: str | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        lines = ["GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {extensions}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "connection closed during the handshake"
            head += chunk
        status, *headers = head.decode("latin-1").split("\r\n")
        assert " 101 " in status, status
        self.headers = {k.lower(): v.strip() for k, _, v in
                        (h.partition(":") for h in headers if h)}
        self.extension = self.headers.get("sec-websocket-extensions", "")

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def frame(self) -> tuple[bool, int, bytes]:
        """(rsv1, opcode, payload) of the next frame."""
        first, second = self._exact(2)
        assert not second & 0x80, "server frames are never masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._exact(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._exact(8))[0]
        assert first & 0x80, "one frame per message"
        return bool(first & 0x40), first & 0x0F, self._exact(size)

    def message(self, wbits: int) -> tuple[bool, dict]:
        rsv1, opcode, payload = self.frame()
        assert opcode == 1
        if rsv1:
            # Each compressed message must decode on its own (no context takeover).
            payload = zlib.decompressobj(-wbits).decompress(payload + b"\x00\x00\xff\xff")
        return rsv1, json.loads(payload)

    def send(self, message: dict) -> None:
        payload = json.dumps(message).encode()
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        size = len(payload)
        head = (bytes((0x81, 0x80 | size)) if size < 126
                else struct.pack("!BBH", 0x81, 0x80 | 126, size))
        self.sock.sendall(head + mask + masked)

    def close(self) -> None:
        self.sock.close()


def window(extension: str) -> int:
    """The server's deflate window (wbits) from the extension it accepted."""
    for param in extension.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "server_max_window_bits":
            return int(value)
    return 15
