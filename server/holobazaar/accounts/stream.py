"""Who may join which stream channel. The /ws connection calls this hook: public channels
are open to anyone; a show's control channel needs a performer of that market and a
display's curator preview a curator of that market (the token comes in `hello`)."""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool

from holobazaar.accounts import service
from holobazaar.accounts.models import Principal

PRIVATE_CHANNELS: dict[str, str] = {"show": "performer", "preview": "curator"}
_PRIVATE = re.compile(r"^market/(?P<market>[a-z0-9-]+)/(?P<kind>show|preview)/[a-z0-9-]+$")


def required_role(channel: str) -> tuple[str, str] | None:
    """(role, market) a channel needs, or None for a public channel."""
    match = _PRIVATE.match(channel)
    if match is None:
        return None
    return PRIVATE_CHANNELS[match.group("kind")], match.group("market")


def may_subscribe(principal: Principal | None, channel: str) -> bool:
    need = required_role(channel)
    if need is None:
        return True
    return principal is not None and principal.allows(*need)


class StreamAuth:
    """Reads the engine from app.state lazily: it only exists once the app has started."""

    def __init__(self, state: Any) -> None:
        self.state = state

    async def authenticate(self, token: str) -> Principal | None:
        return await run_in_threadpool(service.principal_for_token, self.state.engine, token)

    def authorize(self, principal: Any, channel: str) -> bool:
        return may_subscribe(principal, channel)
