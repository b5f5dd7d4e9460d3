"""Preview links: a short-lived, read-only pass to one display's curators-only preview
channel (`market/<m>/preview/<d>`), for a curator's phone that is not signed in (the
display editor's QR code). The pass opens that one channel on the stream and nothing else:
it is not an API token. Passes live in this server's memory (a restart, or another node of
a cluster, does not know them: the phone then signs in or scans a fresh code)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from starlette.datastructures import State

from holobazaar.channels import is_private

PREFIX = "hbpv_"
TTL_SECONDS = 3600.0
MAX_LINKS = 10_000


@dataclass(frozen=True)
class PreviewViewer:
    """Who holds a preview link: allowed to join exactly `channel`."""

    channel: str
    expires: float
    name: str = "preview link"

    def allows(self, role: str, market: str | None) -> bool:  # no role anywhere
        return False


class PreviewLinks:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._links: dict[str, PreviewViewer] = {}

    def mint(self, channel: str) -> str:
        """A new pass for a private preview channel."""
        if not is_private(channel) or "/preview/" not in channel:
            raise ValueError(f"{channel!r} is not a preview channel")
        now = time.monotonic()
        if len(self._links) >= MAX_LINKS:
            self._links = {k: v for k, v in self._links.items() if v.expires > now}
            while len(self._links) >= MAX_LINKS:  # still full: the oldest pass goes
                del self._links[next(iter(self._links))]
        token = PREFIX + secrets.token_urlsafe(24)
        self._links[token] = PreviewViewer(channel, now + self.ttl)
        return token

    def viewer(self, token: str) -> PreviewViewer | None:
        """The pass's holder while it is valid, else None."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        found = self._links.get(token)
        if found is None or found.expires <= time.monotonic():
            self._links.pop(token, None)
            return None
        return found


def links_of(state: State) -> PreviewLinks:
    """The app's preview links (made on first use)."""
    links = getattr(state, "preview_links", None)
    if links is None:
        links = PreviewLinks()
        state.preview_links = links
    return links
