"""The /ws hello token: anonymous visitors join public channels; private show and preview
channels need a performer or curator token of that market; a bad token closes with 1008."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

SHOW = "market/alpha/show/opening"
PREVIEW = "market/alpha/preview/stall"
PUBLIC = "market/alpha/display/stall"


@pytest.fixture
def private_channels(server):
    hub = server.app.state.services.hub

    async def publish() -> None:
        await hub.publish(SHOW, {"cue": 0, "state": "stopped"})
        await hub.publish(PREVIEW, {"draft": True})
        await hub.publish("market/beta/show/opening", {"cue": 0})

    server.call(publish)


def hello(ws, channels: list[str], token: str | None = None) -> list[dict]:
    """Send hello and collect one reply per channel (snapshot or error)."""
    welcome = json.loads(ws.recv(timeout=5))
    assert welcome["type"] == "welcome"
    message: dict = {"type": "hello", "protocol": 1,
                     "subscribe": [{"channel": c} for c in channels]}
    if token is not None:
        message["token"] = token
    ws.send(json.dumps(message))
    return [json.loads(ws.recv(timeout=5)) for _ in channels]


def summary(replies: list[dict]) -> dict[str, str]:
    return {r["channel"]: r["type"] if r["type"] != "error" else r["code"] for r in replies}


def test_anonymous_gets_public_channels_but_not_private_ones(server, private_channels):
    with connect(server.ws_url) as ws:
        replies = hello(ws, [PUBLIC, SHOW, PREVIEW])
    assert summary(replies) == {PUBLIC: "snapshot", SHOW: "forbidden", PREVIEW: "forbidden"}


def test_private_channel_names_cannot_be_probed(server, private_channels):
    with connect(server.ws_url) as ws:
        replies = hello(ws, ["market/alpha/show/no-such-show"])
    assert summary(replies) == {"market/alpha/show/no-such-show": "forbidden"}


def test_performer_token_joins_own_market_show_only(server, accounts, private_channels):
    token = accounts.token(["performer"], ["alpha"])
    with connect(server.ws_url) as ws:
        replies = hello(ws, [SHOW, PREVIEW, "market/beta/show/opening", PUBLIC], token)
    assert summary(replies) == {SHOW: "snapshot", PREVIEW: "forbidden",
                                "market/beta/show/opening": "forbidden", PUBLIC: "snapshot"}
    snapshot = next(r for r in replies if r["channel"] == SHOW)
    assert snapshot["state"] == {"cue": 0, "state": "stopped"}


def test_curator_token_gets_preview_and_live_patches(server, accounts, private_channels):
    token = accounts.token(["curator"], ["alpha"])
    with connect(server.ws_url) as ws:
        assert summary(hello(ws, [PREVIEW, SHOW], token)) == {PREVIEW: "snapshot",
                                                               SHOW: "forbidden"}
        server.call(server.app.state.services.hub.publish, PREVIEW, {"draft": False})
        patch = json.loads(ws.recv(timeout=5))
    assert patch["type"] == "patch" and patch["channel"] == PREVIEW


def test_admin_token_gets_everything(server, accounts, private_channels):
    token = accounts.token(["admin"], [])
    with connect(server.ws_url) as ws:
        replies = hello(ws, [SHOW, PREVIEW, "market/beta/show/opening"], token)
    assert set(summary(replies).values()) == {"snapshot"}


@pytest.mark.parametrize("token", ["hbt_" + "x" * 43, "not-a-token", "revoked"])
def test_invalid_token_is_unauthorized_and_closes_1008(server, accounts, private_channels,
                                                       token):
    if token == "revoked":
        from holobazaar.accounts import service

        token = accounts.token(["performer"], ["alpha"], name="old booth")
        service.revoke_token(accounts.engine, "old booth")
    with connect(server.ws_url) as ws:
        json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"type": "hello", "protocol": 1, "token": token,
                            "subscribe": [{"channel": PUBLIC}]}))
        error = json.loads(ws.recv(timeout=5))
        assert error == {"type": "error", "code": "unauthorized", "message": "invalid token"}
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_oversized_token_is_an_invalid_message(server):
    with connect(server.ws_url) as ws:
        json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"type": "hello", "protocol": 1, "token": "x" * 600,
                            "subscribe": []}))
        error = json.loads(ws.recv(timeout=5))
    assert error["code"] == "invalid_message" and "x" * 20 not in error["message"]


def test_token_in_the_url_grants_nothing(server, accounts, private_channels):
    token = accounts.token(["performer"], ["alpha"])
    with connect(f"{server.ws_url}?token={token}") as ws:
        assert summary(hello(ws, [SHOW])) == {SHOW: "forbidden"}
