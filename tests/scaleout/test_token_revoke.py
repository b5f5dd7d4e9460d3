"""A token revoked with the CLI on a deployment with a Redis broker is refused by every
node at once (issue #26): the nodes cache verified tokens for
accounts.service.TOKEN_CACHE_SECONDS, and the CLI tells them through the cluster's
notify channel to forget it."""

from __future__ import annotations

import time

import httpx
import pytest
from typer.testing import CliRunner

from holobazaar.accounts.service import TOKEN_CACHE_SECONDS
from holobazaar.cli import app
from scaleout.nodes import ITEM_PATH

from support.processes import api_token

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_a_token_revoked_with_the_cli_is_refused_by_every_node_at_once(cluster):
    token = api_token(cluster.database_url, "revoked at once", ["curator"], ["greenhaven"])
    headers = {"Authorization": f"Bearer {token}"}
    # Two running nodes (a module before this one may have killed some of the cluster's).
    nodes = [node for node in cluster.nodes if node.alive()][:2]
    if len(nodes) < 2:
        nodes += cluster.start(*(f"revoke-{n}" for n in range(2 - len(nodes))))
    with httpx.Client(timeout=10) as http:
        for node in nodes:  # each node has now verified (and cached) the token
            assert http.get(f"{node.url}{ITEM_PATH}", headers=headers).status_code == 200
        result = CliRunner().invoke(
            app, ["token", "revoke", "revoked at once", "--database-url",
                  cluster.database_url, "--broker-url", cluster.redis_url],
            env={"HOLOBAZAAR_REDIS_PREFIX": cluster.prefix})
        assert result.exit_code == 0 and "revoked token" in result.output, result.output
        assert "could not be told" not in result.output
        revoked = time.monotonic()
        for node in nodes:
            while http.get(f"{node.url}{ITEM_PATH}", headers=headers).status_code != 401:
                assert time.monotonic() - revoked < TOKEN_CACHE_SECONDS / 2, node.url
                time.sleep(0.05)
