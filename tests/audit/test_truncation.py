"""#28.8: a chain that lost its last entries, or was edited and re-hashed after the edit, is
intact by itself; `audit verify` catches both with the heads this server signed (kept
apart from the chain), and the server refuses to sign a head lower than one it signed."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from holobazaar.audit import chain
from holobazaar.cli import app
from holobazaar.db import session_scope

from .conftest import MARKET, apply, get
from .tamper import rehash_audit, rehash_public, truncate

runner = CliRunner()


def _verify(live, *extra: str):
    return runner.invoke(app, ["audit", "verify", "--data-dir", str(live.settings.data_dir),
                               *extra])


def _signed(live) -> dict:
    response = get(live, f"/api/v1/markets/{MARKET}/audit/head")
    assert response.status_code == 200, response.text
    return response.json()


def _chain_alone_intact(live) -> bool:
    """What `audit verify` checked before: the links and hashes of the log by itself."""
    with session_scope(live.app.state.services.engine) as session:
        return chain.walk(session)[0] == []


def test_truncation_fails_audit_verify(live) -> None:
    for price in ("6.30", "6.20", "6.10"):
        apply(live, {"sku": "TOM-BRANDY", "price": price})
    _signed(live)
    ok = _verify(live)
    assert ok.exit_code == 0, ok.output
    assert "chain intact; 1 signed head(s) reproduced" in ok.stdout
    truncate(live.app.state.services.engine, 2)  # the last two batches, their public records too
    assert _chain_alone_intact(live)  # the old check: "ok: ... chain intact"
    broken = _verify(live)
    assert broken.exit_code == 1
    assert "entries were removed (truncated)" in broken.stderr
    assert f"public chain of {MARKET} has" in broken.stderr and "records were removed" in \
        broken.stderr
    # The server will not sign the shorter chain: a clear 503, and it keeps serving.
    refused = get(live, f"/api/v1/markets/{MARKET}/audit/head")
    assert refused.status_code == 503 and "audit verify" in refused.json()["detail"]
    page = get(live, f"/t/{MARKET}")
    assert page.status_code == 503 and "cannot be vouched for" in page.text
    assert "Last verified" not in page.text
    assert get(live, "/healthz").status_code == 200


def test_an_edit_rehashed_to_the_end_fails_audit_verify(live) -> None:
    apply(live, {"sku": "TOM-BRANDY", "price": "6.30"})
    apply(live, {"sku": "KAL-NERO", "price": "3.10"})
    _signed(live)

    def edit(entry) -> None:
        if entry.action == "inventory.batch":
            detail = json.loads(entry.detail)
            detail["idempotency_key"] = "forged"
            entry.detail = json.dumps(detail, sort_keys=True, separators=(",", ":"))
            entry.actor = "someone else"

    rehash_audit(live.app.state.services.engine, edit)
    assert _chain_alone_intact(live)
    broken = _verify(live)
    assert broken.exit_code == 1
    assert "entries were rewritten and re-hashed" in broken.stderr


def test_a_public_record_rewritten_and_rehashed_fails_audit_verify(live) -> None:
    apply(live, {"sku": "TOM-BRANDY", "price": "6.30"})
    apply(live, {"sku": "TOM-BRANDY", "price": "6.20"})
    head = _signed(live)
    records = get(live, f"/api/v1/markets/{MARKET}/items/TOM-BRANDY/history").json()["records"]
    rehash_public(live.app.state.services.engine, MARKET, records[1]["seq"], "1.00")
    assert _chain_alone_intact(live)
    broken = _verify(live)
    assert broken.exit_code == 1
    assert f"record {head['height']} is not the one the head" in broken.stderr
    assert "history was rewritten" in broken.stderr
