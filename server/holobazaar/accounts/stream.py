"""Who may join which stream channel. The /ws connection calls this hook: public channels
are open to anyone; a show's control channel needs a performer of that market and a
display's curator preview a curator of that market (the token comes in `hello`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from holobazaar import db
from holobazaar.accounts import service
from holobazaar.accounts.models import Principal
from holobazaar.accounts.preview_links import PREFIX as PREVIEW_PREFIX
from holobazaar.accounts.preview_links import PreviewLinks, PreviewViewer
from holobazaar.channels import PRIVATE_KINDS, private_kind


def required_role(channel: str) -> tuple[str, str] | None:
    """(role, market) a channel needs, or None for a public channel."""
    found = private_kind(channel)
    if found is None:
        return None
    kind, market = found
    return PRIVATE_KINDS[kind], market


def may_subscribe(principal: Principal | None, channel: str) -> bool:
    need = required_role(channel)
    if need is None:
        return True
    return principal is not None and principal.allows(*need)


class StreamAuth:
    """Who a stream token is: an API token's principal, or a preview link's viewer."""

    def __init__(self, engine: Engine, links: PreviewLinks, cache: service.TokenCache) -> None:
        self.engine, self.links, self.cache = engine, links, cache

    async def authenticate(self, token: str) -> Principal | PreviewViewer | None:
        if token.startswith(PREVIEW_PREFIX):  # a preview link: one preview channel
            return self.links.viewer(token)
        return await db.call(self.engine, service.principal_for_token, self.engine, token,
                             self.cache)

    def authorize(self, principal: Any, channel: str) -> bool:
        if isinstance(principal, PreviewViewer):  # its preview, and what anyone may join
            return channel == principal.channel or may_subscribe(None, channel)
        return may_subscribe(principal, channel)
