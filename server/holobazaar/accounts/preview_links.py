"""Preview links: a short-lived, read-only pass to one display's curators-only preview
channel (`market/<m>/preview/<d>`), for a curator's phone that is not signed in (the
display editor's QR code). The pass opens that one channel on the stream and nothing else:
it is not an API token.

A pass is self-contained: `hbpv_<base64url("<expiry>|<channel>")>.<base64url(HMAC-SHA256)>`,
signed with a key kept in the database (table preview_pass_key, made on first use), the
one store every node of a cluster shares. So a pass minted on one node is valid on every
node, and after a restart, until it expires (an hour); nothing is kept per pass."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from holobazaar.accounts.models import PreviewPassKey
from holobazaar.channels import is_private
from holobazaar.db import session_scope

PREFIX = "hbpv_"
TTL_SECONDS = 3600.0
MAX_TOKEN = 512  # hello.token's limit; a pass for the longest channel name is ~260


@dataclass(frozen=True)
class PreviewViewer:
    """Who holds a preview link: allowed to join exactly `channel`."""

    channel: str
    expires: float
    name: str = "preview link"

    def allows(self, role: str, market: str | None) -> bool:  # no role anywhere
        return False


def _is_preview(channel: str) -> bool:
    """A pass opens a display's preview or (minted for a signed-in curator's studio page)
    the market's staff `truth` channel."""
    return is_private(channel) and ("/preview/" in channel or channel.endswith("/truth"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PreviewLinks:
    def __init__(self, key: bytes, ttl: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._key = key
        self._clock = clock  # wall-clock time: the nodes of a cluster agree on it

    def _sign(self, body: str) -> str:
        return _b64(hmac.digest(self._key, body.encode("ascii"), hashlib.sha256))

    def mint(self, channel: str) -> str:
        """A new pass for a private preview (or staff truth) channel."""
        if not _is_preview(channel):
            raise ValueError(f"{channel!r} is not a preview channel")
        expires = int(self._clock() + self.ttl)
        body = _b64(f"{expires}|{channel}".encode())
        return f"{PREFIX}{body}.{self._sign(body)}"

    def viewer(self, token: str) -> PreviewViewer | None:
        """The pass's holder while it is valid (signed with the shared key, not expired),
        else None."""
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN:
            return None
        body, _, signature = token[len(PREFIX):].partition(".")
        if not body or not hmac.compare_digest(signature.encode("ascii", "replace"),
                                               self._sign(body).encode("ascii")):
            return None
        try:
            expires_text, _, channel = _unb64(body).decode("utf-8").partition("|")
            expires = float(int(expires_text))
        except (ValueError, binascii.Error):
            return None
        if expires <= self._clock() or not _is_preview(channel):
            return None
        return PreviewViewer(channel, expires)


def shared_key(engine: Engine) -> bytes:
    """The cluster's pass-signing key, made on first use. When two nodes make it at once,
    the one that loses the insert reads the other's."""
    try:
        return _shared_key(engine)
    except IntegrityError:
        return _shared_key(engine)


def _shared_key(engine: Engine) -> bytes:
    with session_scope(engine) as session:
        row = session.get(PreviewPassKey, 1)
        if row is None:
            row = PreviewPassKey(id=1, key=secrets.token_hex(32), created_at=datetime.now(UTC))
            session.add(row)
        return bytes.fromhex(row.key)
