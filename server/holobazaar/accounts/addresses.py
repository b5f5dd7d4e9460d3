"""THE client address of a request, for every per-address limit (sign-in throttling,
community submissions) and the audit log.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the TCP peer is one of
the configured proxies (`HOLOBAZAAR_TRUSTED_PROXIES`: addresses or CIDR networks,
default none). Then the header is read from the right: the first hop that is not itself
a trusted proxy is the client (a client can prepend anything it likes, never append).
`holobazaar serve` runs uvicorn with its own proxy-header handling off, so the peer seen
here is the real one."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection
from starlette.types import Scope

from holobazaar.config import Network, parse_proxies

UNKNOWN = "unknown"
MAX_HOPS = 32  # a longer X-Forwarded-For is not read further than this from the right


@lru_cache(maxsize=16)
def _networks(value: str) -> tuple[Network, ...]:
    return parse_proxies(value)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
             networks: tuple[Network, ...]) -> bool:
    return ip is not None and any(ip in net for net in networks)


def resolve(peer: str | None, forwarded_for: list[str], trusted: str) -> str:
    """The client address given the TCP peer, the X-Forwarded-For header values (in
    order) and the trusted-proxy setting."""
    networks = _networks(trusted)
    peer_ip = _ip(peer or "")
    if peer_ip is None:
        return (peer or UNKNOWN)[:64]
    if not _trusted(peer_ip, networks) or not forwarded_for:
        return str(peer_ip)
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    client = peer_ip
    for hop in reversed(hops[-MAX_HOPS:]):
        ip = _ip(hop)
        if ip is None:
            break  # garbage from the trusted side: the last hop we could read is the client
        client = ip
        if not _trusted(ip, networks):
            break
    return str(client)


def _forwarded(conn: HTTPConnection) -> list[str]:
    return [v.decode("latin-1") for k, v in conn.scope.get("headers", [])
            if k == b"x-forwarded-for"]


def _trusted_setting(conn: HTTPConnection) -> str:
    settings = getattr(conn.app.state, "settings", None)
    return getattr(settings, "trusted_proxies", "") or ""


def client_address(conn: HTTPConnection) -> str:
    """The client's address (see the module text); 'unknown' without a peer."""
    peer = conn.client.host if conn.client else None
    return resolve(peer, _forwarded(conn), _trusted_setting(conn))


def scope_is_https(scope: Scope, trusted: str) -> bool:
    """Did the client use HTTPS: directly, or to a trusted proxy that says so
    (X-Forwarded-Proto)."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    if not _trusted(_ip(client[0] if client else ""), _networks(trusted)):
        return False
    protos = [v.decode("latin-1") for k, v in scope.get("headers", [])
              if k == b"x-forwarded-proto"]
    return bool(protos) and protos[-1].split(",")[-1].strip().lower() in ("https", "wss")


def is_https(conn: HTTPConnection) -> bool:
    return scope_is_https(conn.scope, _trusted_setting(conn))


def limit_key(address: str) -> str:
    """The key a per-address limit counts under: the address itself, or for IPv6 its /64
    (one subscriber usually holds a whole /64, so single IPv6 addresses are free to make)."""
    ip = _ip(address)
    if ip is None or ip.version == 4:
        return address[:64]
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))
