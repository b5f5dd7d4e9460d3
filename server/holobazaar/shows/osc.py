"""OSC show control over UDP, for QLab, TouchDesigner and other show-control software.

Off by default (`--osc-port`), bound to loopback unless configured. Every datagram is
checked in this order, and anything that fails is dropped, counted and logged, with
nothing fired: source address on the allow-list, a parseable OSC packet (python-osc's
parser), an address `/holobazaar/<market>/<show>/<command>`, the shared secret as first
argument, then the command's own arguments. Commands: go, stop, panic, pause, resume,
standby [number], cue <number> (stand by that cue and fire it).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable

from pythonosc.osc_packet import OscPacket, ParseError

from holobazaar.config import Network
from holobazaar.shows.runner import ShowError, ShowRunner

log = logging.getLogger(__name__)

ADDRESS = re.compile(r"^/holobazaar/([a-z0-9][a-z0-9-]{0,62})/([a-z0-9][a-z0-9-]{0,62})/"
                     r"(go|stop|panic|pause|resume|standby|cue)$")
CUE_NUMBER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,15}$")
MAX_DATAGRAM = 4096


class OscRefused(Exception):
    pass


def cue_number(value: object) -> str:
    """QLab sends cue numbers as strings, TouchDesigner often as numbers: 3 and 3.0 both
    mean cue "3"."""
    if isinstance(value, bool):
        raise OscRefused("cue number must be a string or a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value) if isinstance(value, int | float | str) else ""
    if not CUE_NUMBER.match(text):
        raise OscRefused(f"bad cue number {value!r}")
    return text


class OscControl(asyncio.DatagramProtocol):
    """`lookup(market, show)` returns the runner (or raises ShowError)."""

    def __init__(self, lookup: Callable[[str, str], ShowRunner], secret: str,
                 allow: list[Network]) -> None:
        self.lookup, self.secret, self.allow = lookup, secret.encode(), allow
        self.stats: Counter[str] = Counter()
        self.last_error: str | None = None
        self.done: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue(maxsize=100)
        self._tasks: set[asyncio.Task] = set()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        host = addr[0]
        try:
            if not self._allowed(host):
                self.stats["refused_address"] += 1
                raise OscRefused(f"OSC from {host} refused: not on the allow-list")
            if len(data) > MAX_DATAGRAM:
                raise OscRefused(f"OSC packet of {len(data)} bytes is too large")
            try:
                packet = OscPacket(data)
            except ParseError as exc:
                raise OscRefused(f"malformed OSC packet from {host}: {exc}") from None
            for timed in packet.messages:
                message = timed.message
                command = self._command(message.address, list(message.params))
                task = asyncio.ensure_future(self._run(*command, host))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except OscRefused as exc:
            self._refuse(str(exc))

    def _allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    def _command(self, address: str, params: list) -> tuple[str, str, str, str | None]:
        match = ADDRESS.match(address)
        if match is None:
            raise OscRefused(f"unknown OSC address {address!r} (expected "
                             "/holobazaar/<market>/<show>/go|stop|panic|pause|resume|"
                             "standby|cue)")
        market, show, command = match.groups()
        if not params or not isinstance(params[0], str) or not hmac.compare_digest(
                params[0].encode(), self.secret):
            self.stats["refused_secret"] += 1
            raise OscRefused(f"OSC {address}: missing or wrong secret (first argument)")
        rest = params[1:]
        number = None
        if command == "cue":
            if len(rest) != 1:
                raise OscRefused(f"OSC {address}: expected the cue number after the secret")
            number = cue_number(rest[0])
        elif command == "standby" and rest:
            if len(rest) > 1:
                raise OscRefused(f"OSC {address}: at most one cue number")
            number = cue_number(rest[0])
        elif rest:
            raise OscRefused(f"OSC {address}: takes only the secret")
        return market, show, command, number

    async def _run(self, market: str, show: str, command: str, number: str | None,
                   host: str) -> None:
        try:
            runner = self.lookup(market, show)
            if command == "go":
                await runner.go()
            elif command in ("stop", "panic"):
                await runner.stop(panic=command == "panic")
            elif command == "pause":
                await runner.pause()
            elif command == "resume":
                await runner.resume()
            elif command == "standby":
                await runner.standby_cue(number)
            else:
                await runner.jump(number or "", go=True)
        except ShowError as exc:
            self._refuse(f"OSC {command} for {market}/{show} from {host}: {exc.message}",
                         command)
            return
        self.stats["accepted"] += 1
        log.info("OSC %s %s for %s/%s from %s", command, number or "", market, show, host)
        self._done(command, None)

    def _refuse(self, message: str, what: str = "refused") -> None:
        self.stats["refused"] += 1
        self.last_error = message
        log.warning("%s", message)
        self._done(what, message)

    def _done(self, what: str, error: str | None) -> None:
        # Tests and the console read outcomes from here; old ones fall off.
        if self.done.full():
            self.done.get_nowait()
        self.done.put_nowait((what, error))

    def error_received(self, exc: Exception) -> None:
        log.warning("OSC socket error: %s", exc)


async def start_osc(host: str, port: int, control: OscControl
                    ) -> tuple[asyncio.DatagramTransport, Callable[[], Awaitable[None]]]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: control,
                                                       local_addr=(host, port))

    async def close() -> None:
        transport.close()

    return transport, close
