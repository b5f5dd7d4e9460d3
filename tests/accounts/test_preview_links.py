"""Preview links (#18): the display editor's pass opens that display's preview channel (and
public channels) on /ws and nothing else, for an hour; /d/<m>/<d>?preview=1 shows the draft
only to a signed-in curator of the market or with a valid pass, never to a visitor. A pass is
signed with a key in the database, so every node of a cluster accepts it."""

from __future__ import annotations

import json
import re

from starlette.datastructures import State
from websockets.sync.client import connect

from accounts.test_stream_auth import PREVIEW, PUBLIC, SHOW, hello, private_channels, summary
from holobazaar import db
from holobazaar.accounts.preview_links import PREFIX, PreviewLinks, shared_key

__all__ = ["private_channels"]  # the fixture, used by name below
OTHER_PREVIEW = "market/alpha/preview/other"
BETA_PREVIEW = "market/beta/preview/stall"


def server_links(server):
    """The running server's preview links (its assembled services)."""
    return server.app.state.services.preview_links


def boot_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="holo-boot">(.*?)</script>', html,
                      re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_a_pass_opens_its_preview_and_public_channels_only(server, private_channels):
    async def more() -> None:
        await server.app.state.services.hub.publish(OTHER_PREVIEW, {"draft": True})
        await server.app.state.services.hub.publish(BETA_PREVIEW, {"draft": True})

    server.call(more)
    token = server_links(server).mint(PREVIEW)
    with connect(server.ws_url) as ws:
        replies = hello(ws, [PREVIEW, PUBLIC, OTHER_PREVIEW, BETA_PREVIEW, SHOW], token)
    assert summary(replies) == {PREVIEW: "snapshot", PUBLIC: "snapshot",
                                OTHER_PREVIEW: "forbidden", BETA_PREVIEW: "forbidden",
                                SHOW: "forbidden"}


def test_an_expired_or_made_up_pass_is_refused(server, private_channels):
    links = PreviewLinks(shared_key(server.app.state.services.engine), ttl=-1)
    assert links.viewer(links.mint(PREVIEW)) is None
    # Signed with another key, or its channel changed after signing: refused.
    forged = PreviewLinks(b"not the cluster's key").mint(PREVIEW)
    assert server_links(server).viewer(forged) is None
    body, _, signature = server_links(server).mint(PREVIEW)[len(PREFIX):].partition(".")
    other_body = server_links(server).mint(OTHER_PREVIEW)[len(PREFIX):].partition(".")[0]
    assert server_links(server).viewer(f"{PREFIX}{other_body}.{signature}") is None
    assert server_links(server).viewer(f"{PREFIX}{body}.") is None
    with connect(server.ws_url) as ws:
        hello(ws, [], "hbpv_made-up")
        error = json.loads(ws.recv(timeout=5))
    assert error["code"] == "unauthorized"
    # A pass is no API token.
    token = server_links(server).mint(PREVIEW)
    with server.client() as http:
        answer = http.get("/api/v1/markets/alpha/displays/stall/source",
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_only_curators_see_the_draft_on_the_display_page(server, accounts, private_channels):
    hub = server.app.state.services.hub
    draft = json.loads(json.dumps(hub.snapshot(PUBLIC)[2]))
    draft["display"]["title"] = "Draft title"
    server.call(hub.publish, PREVIEW, draft)
    accounts.user("cora", ["curator"], ["alpha"])
    accounts.user("bert", ["curator"], ["beta"])
    with server.client() as visitor:
        boot = boot_of(visitor.get("/d/alpha/stall?preview=1").text)
        assert boot["channel"] == PUBLIC and "token" not in boot
        page = visitor.get("/d/alpha/stall?preview=1")
        assert "published display" in page.text and "Draft title" not in page.text
        for link in ("hbpv_made-up", server_links(server).mint(OTHER_PREVIEW)):
            boot = boot_of(visitor.get(f"/d/alpha/stall?preview=1&link={link}").text)
            assert boot["channel"] == PUBLIC and "token" not in boot
        link = server_links(server).mint(PREVIEW)
        page = visitor.get(f"/d/alpha/stall?preview=1&link={link}")
        assert boot_of(page.text)["channel"] == PREVIEW
        assert boot_of(page.text)["state"]["display"]["title"] == "Draft title"
        assert "Draft preview" in page.text
        assert page.headers["cache-control"] == "no-store"
    with server.client() as http:
        accounts.login(http, "bert", next_url="/studio/beta")
        assert boot_of(http.get("/d/alpha/stall?preview=1").text)["channel"] == PUBLIC
    with server.client() as http:
        accounts.login(http, "cora", next_url="/studio/alpha")
        boot = boot_of(http.get("/d/alpha/stall?preview=1").text)
        assert boot["channel"] == PREVIEW and boot["token"].startswith("hbpv_")
        assert boot_of(http.get("/d/alpha/stall").text)["channel"] == PUBLIC


def test_a_pass_minted_on_one_node_opens_the_preview_on_another(server, private_channels):
    """A second app instance (another node: its own memory, the same settings and database)
    mints a pass; the running server accepts it, and the other way round."""
    hub = server.app.state.services.hub
    server.call(hub.publish, PREVIEW, json.loads(json.dumps(hub.snapshot(PUBLIC)[2])))
    node = State()
    node.engine = db.make_engine(server.settings.resolved_database_url)
    try:
        token = PreviewLinks(shared_key(node.engine)).mint(PREVIEW)
        with connect(server.ws_url) as ws:
            replies = hello(ws, [PREVIEW, OTHER_PREVIEW], token)
        assert summary(replies) == {PREVIEW: "snapshot", OTHER_PREVIEW: "forbidden"}
        with server.client() as visitor:
            page = visitor.get(f"/d/alpha/stall?preview=1&link={token}")
            assert boot_of(page.text)["channel"] == PREVIEW
        viewer = PreviewLinks(shared_key(node.engine)).viewer(server_links(server).mint(PREVIEW))
        assert viewer is not None and viewer.channel == PREVIEW
    finally:
        node.engine.dispose()
