"""Channel names, the one place they are spelled: `market/<m>` and its `zone/<z>`,
`display/<d>`, `pulse`, and the private `show/<s>`, `preview/<d>` and staff `truth` channels; which
role a private channel needs, and how much history each kind keeps."""

from __future__ import annotations

import re

# Private channel kinds and the role that may subscribe to them (accounts/stream.py).
PRIVATE_KINDS: dict[str, str] = {"show": "performer", "preview": "curator", "truth": "curator"}
# Private kinds without an id: `market/<m>/truth` (held changes, mismatches, moderation).
_MARKET_WIDE = ("truth",)

# Every name a client may subscribe to (the protocol's JSON Schema carries it).
# A display channel has a variant per language of the market: `market/<m>/display/<d>?lang=nl`
# (docs/protocol.md, Languages); the plain name carries the market's default language.
CHANNEL_PATTERN = (r"^market/[a-z0-9-]+"
                   r"(/zone/[a-z0-9-]+|/display/[a-z0-9-]+(\?lang=[a-z]{2,3}(-[a-z0-9]{2,8})?)?"
                   r"|/pulse|/truth|/show/[a-z0-9-]+|/preview/[a-z0-9-]+)?$")
LANG_MARK = "?lang="

_PRIVATE = re.compile(r"^market/(?P<market>[a-z0-9-]+)/(?:(?P<kind>"
                      + "|".join(k for k in PRIVATE_KINDS if k not in _MARKET_WIDE)
                      + r")/[a-z0-9-]+|(?P<wide>" + "|".join(_MARKET_WIDE) + r"))$")
_PRIVATE_MARKERS = tuple(f"/{kind}/" for kind in PRIVATE_KINDS if kind not in _MARKET_WIDE)
_PRIVATE_ENDINGS = tuple(f"/{kind}" for kind in _MARKET_WIDE)

# Live aggregate channels (market/<m>/pulse) are rewritten every second and their snapshot
# is small: a client that missed more than this resumes by snapshot, and the history does
# not hold ten minutes of patches nobody will replay.
AGGREGATE_HISTORY = 30


def market_channel(market: str) -> str:
    return f"market/{market}"


def zone_channel(market: str, zone: str) -> str:
    return f"market/{market}/zone/{zone}"


def display_channel(market: str, display: str, language: str | None = None) -> str:
    """The display's channel; with a `language`, its variant in that language."""
    base = f"market/{market}/display/{display}"
    return f"{base}{LANG_MARK}{language}" if language else base


def language_of(channel: str) -> str | None:
    """`market/m/display/d?lang=nl` -> "nl"; None for a channel without a language."""
    _, mark, language = channel.partition(LANG_MARK)
    return language if mark else None


def base_channel(channel: str) -> str:
    """The channel without its language: `market/m/display/d?lang=nl` -> `.../display/d`."""
    return channel.partition(LANG_MARK)[0]


def pulse_channel(market: str) -> str:
    return f"market/{market}/pulse"


def truth_channel(market: str) -> str:
    """Staff only (curators of the market): a small summary of held changes, open
    mismatches and the moderation queue, published when it changes."""
    return f"market/{market}/truth"


def market_of(channel: str) -> str:
    """`market/<m>/...` -> m."""
    parts = channel.split("/")
    return parts[1] if len(parts) > 1 else ""


def display_of(channel: str) -> tuple[str, str] | None:
    """(market, display) of a display channel (of any language), None for any other."""
    parts = base_channel(channel).split("/")
    if len(parts) == 4 and parts[0] == "market" and parts[2] == "display":
        return parts[1], parts[3]
    return None


def is_zone(channel: str) -> bool:
    return "/zone/" in channel


def is_private(channel: str) -> bool:
    """Show, preview and truth channels: closed unless an auth hook lets the caller in."""
    return (any(marker in channel for marker in _PRIVATE_MARKERS)
            or (channel.count("/") == 2 and channel.endswith(_PRIVATE_ENDINGS)))


def private_kind(channel: str) -> tuple[str, str] | None:
    """(kind, market) of a private channel, None for a public one."""
    match = _PRIVATE.match(channel)
    if match is None:
        return None
    return match.group("kind") or match.group("wide"), match.group("market")


def history_limit(channel: str, default: int) -> int:
    """Entries of history a channel keeps."""
    return min(default, AGGREGATE_HISTORY) if channel.endswith("/pulse") else default
