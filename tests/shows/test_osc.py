"""OSC show control with a real UDP socket: accepted commands fire cues; malformed packets,
wrong secrets, unknown addresses and senders off the allow-list fire nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from holobazaar.config import Settings

from support.live import LiveServer, start_server

SECRET = "s3cret-for-tests"
SHOW = "/holobazaar/greenhaven/harvest-collective"


@pytest.fixture(scope="module")
def osc_server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("osc"), osc_port=0, osc_secret=SECRET,
                        osc_allow="127.0.0.1")
    yield live
    live.stop()


def message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def send(live: LiveServer, data: bytes, source: str = "127.0.0.1") -> tuple[str, str | None]:
    """Send one datagram from `source` and wait for the listener's verdict."""
    port = live.app.state.services.osc_address[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(data, ("127.0.0.1", port))
    control = live.app.state.services.osc

    async def outcome():
        return await asyncio.wait_for(control.done.get(), 5)
    return live.call(outcome)


def state(live: LiveServer) -> dict:
    with live.client() as http:
        return http.get("/api/v1/shows/greenhaven/harvest-collective",
                        headers=live.write_headers).json()


def fired(live: LiveServer) -> list[str]:
    return [c["number"] for c in state(live)["cues"]]


def test_osc_go_cue_and_stop(osc_server: LiveServer):
    assert send(osc_server, message(f"{SHOW}/standby", SECRET)) == ("standby", None)
    assert send(osc_server, message(f"{SHOW}/go", SECRET)) == ("go", None)
    assert fired(osc_server) == ["1"]
    # TouchDesigner sends numbers as floats: 6.0 is cue "6".
    assert send(osc_server, message(f"{SHOW}/cue", SECRET, 6.0)) == ("cue", None)
    assert fired(osc_server)[-1] == "6"
    assert send(osc_server, message(f"{SHOW}/panic", SECRET)) == ("panic", None)
    assert state(osc_server)["status"] == "stopped"
    what, error = send(osc_server, message(f"{SHOW}/go", SECRET))
    assert (what, error) == ("go", "OSC go for greenhaven/harvest-collective from 127.0.0.1: "
                             "the show is stopped: stand by a cue first (standby or jump)")
    assert send(osc_server, message(f"{SHOW}/standby", SECRET)) == ("standby", None)


@pytest.mark.parametrize("data, source, expected", [
    (b"\x00\x01garbage", "127.0.0.1", "malformed OSC packet from 127.0.0.1"),
    (b"/holobazaar/greenhaven/harvest-collective/go\x00\x00\x00\x00,s\x00", "127.0.0.1",
     "malformed OSC packet"),
    (message(f"{SHOW}/go", "wrong-secret"), "127.0.0.1", "missing or wrong secret"),
    (message(f"{SHOW}/go"), "127.0.0.1", "missing or wrong secret"),
    (message(f"{SHOW}/go", SECRET), "127.0.0.2", "OSC from 127.0.0.2 refused: not on the "
     "allow-list"),
    (message("/holobazaar/greenhaven/harvest-collective/explode", SECRET), "127.0.0.1",
     "unknown OSC address"),
    (message(f"{SHOW}/cue", SECRET), "127.0.0.1", "expected the cue number"),
    (message(f"{SHOW}/cue", SECRET, "99"), "127.0.0.1", "has no cue '99'"),
    (message(f"{SHOW}/cue", SECRET, "../x"), "127.0.0.1", "bad cue number"),
    (message(f"{SHOW}/go", SECRET, 1), "127.0.0.1", "takes only the secret"),
    (message("/holobazaar/greenhaven/nope/go", SECRET), "127.0.0.1", "has no show 'nope'"),
])
def test_bad_osc_fires_nothing(osc_server: LiveServer, data: bytes, source: str,
                               expected: str):
    before = state(osc_server)
    _what, error = send(osc_server, data, source)
    assert error is not None and expected in error, error
    after = state(osc_server)
    assert after["cues"] == before["cues"]
    assert after["standby"] == before["standby"]


def test_osc_is_off_by_default_and_needs_a_secret(tmp_path: Path):
    assert Settings().osc_port is None
    with pytest.raises(ValueError, match="OSC needs a shared secret"):
        Settings(osc_port=9000)
    with pytest.raises(ValueError, match="not an IP address or network: 'lan'"):
        Settings(osc_allow="127.0.0.1,lan")


def test_osc_and_sync_figures_are_in_metrics(osc_server: LiveServer):
    send(osc_server, message(f"{SHOW}/go", "wrong-secret"))
    with osc_server.client() as http:
        text = http.get("/metrics").text
    assert 'holobazaar_osc_total{outcome="refused_secret"}' in text
    assert 'holobazaar_osc_total{outcome="accepted"}' in text
