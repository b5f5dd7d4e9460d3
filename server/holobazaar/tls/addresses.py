"""The names a phone on the same network may use to reach this machine, found without
sending anything over the network."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holobazaar.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Connecting a UDP socket only asks the kernel for a route: no packet is sent. These are
# private/ULA addresses, so the answer is the address of the interface facing the LAN.
_PROBES: tuple[tuple[int, str], ...] = ((socket.AF_INET, "10.255.255.255"),
                                        (socket.AF_INET, "192.168.255.255"),
                                        (socket.AF_INET6, "fd00::1"))


@dataclass(frozen=True)
class LocalNames:
    dns: tuple[str, ...]
    ips: tuple[IPAddress, ...]

    @property
    def lan_ips(self) -> tuple[IPAddress, ...]:
        return tuple(ip for ip in self.ips if not ip.is_loopback)


def _usable(ip: IPAddress) -> bool:
    # Link-local addresses need a zone id (fe80::1%wlan0) that browsers do not accept in URLs.
    return not (ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def _route_addresses() -> list[IPAddress]:
    found: list[IPAddress] = []
    for family, target in _PROBES:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))
            found.append(ipaddress.ip_address(s.getsockname()[0].split("%")[0]))
    return found


def _hostname_addresses(hostname: str) -> list[IPAddress]:
    found: list[IPAddress] = []
    with contextlib.suppress(OSError, UnicodeError):
        for info in socket.getaddrinfo(hostname, None):
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
    return found


def local_names() -> LocalNames:
    """localhost, the host name (and its mDNS .local form), loopback and LAN addresses."""
    hostname = socket.gethostname().strip().rstrip(".").lower()
    dns = ["localhost"]
    if hostname and hostname != "localhost":
        dns.append(hostname)
        short = hostname.split(".")[0]
        dns.append(f"{short}.local")
    ips: list[IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    for ip in _route_addresses() + _hostname_addresses(hostname):
        if _usable(ip) and ip not in ips:
            ips.append(ip)
    return LocalNames(tuple(dict.fromkeys(dns)), tuple(ips))


def url_host(host: str | IPAddress) -> str:
    """A host as it appears in a URL: IPv6 literals in brackets."""
    text = str(host)
    return f"[{text}]" if ":" in text else text


def primary_lan_address() -> IPAddress | None:
    lan = local_names().lan_ips
    candidates: list[IPAddress] = [ip for ip in lan if ip.version == 4] or list(lan)
    return candidates[0] if candidates else None


def default_base_url(host: str, port: int, tls: bool) -> str:
    """Where phones should go when the operator did not say: the LAN address when the
    server listens on every interface, `localhost` for loopback, else the bind address."""
    scheme = "https" if tls else "http"
    if host in ("0.0.0.0", "::", ""):
        lan = primary_lan_address()
        shown = url_host(lan) if lan else "localhost"
    elif host in ("127.0.0.1", "::1"):
        shown = "localhost"
    else:
        shown = url_host(host)
    default_port = 443 if tls else 80
    return f"{scheme}://{shown}" + ("" if port == default_port else f":{port}")


def public_base_url(settings: Settings) -> str:
    """The configured base URL, else the one `default_base_url` finds."""
    return settings.base_url or default_base_url(settings.host, settings.port, settings.uses_tls)
