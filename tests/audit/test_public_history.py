"""The public price history: what an item's history says (and does not say), paging, bad
requests, the signed head and key, the /t/<m> page, and `audit verify --public` against a
live server on a loopback port."""

from __future__ import annotations

import json

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from holobazaar.audit import heads, public
from holobazaar.canonical import canonical_bytes
from holobazaar.cli import app
from holobazaar.db import session_scope

from .conftest import MARKET, apply, get

runner = CliRunner()
HISTORY = f"/api/v1/markets/{MARKET}/items/{{sku}}/history"
FIELDS = {"market", "seq", "time", "sku", "price", "currency", "unit", "status", "source",
          "prev_hash", "hash"}


def test_history_lists_every_change_and_nothing_personal(live) -> None:
    listed = {i["sku"]: i for i in get(live, f"/api/v1/markets/{MARKET}/items").json()}
    first = listed["TOM-BRANDY"]
    apply(live, {"sku": "TOM-BRANDY", "price": "6.30"})
    apply(live, {"sku": "TOM-BRANDY", "stock": 0})
    apply(live, {"op": "remove", "sku": "TOM-BRANDY"})
    response = get(live, HISTORY.format(sku="TOM-BRANDY"))
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert all(set(r) == FIELDS for r in records)
    # The price the market's files set starts the history; then each change, in order.
    assert [(r["price"], r["status"], r["source"]) for r in records] == [
        (first["price"], first["status"], "content"), ("6.30", first["status"], "feed"),
        ("6.30", "sold_out", "feed"),
        (None, "removed", "feed")]
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    # No actor, no key, no digest of a body: only the public fields (and chain hashes).
    text_of = response.text
    for private in ("actor", "idempotency", "body_sha256", "tests", "token"):
        assert private not in text_of
    # A removed item keeps its history (it is no longer in the inventory).
    assert get(live, HISTORY.format(sku="TOM-BRANDY")).status_code == 200


def test_history_pages_with_a_cursor_and_refuses_bad_requests(live) -> None:
    for n in range(25):
        apply(live, {"sku": "KAL-NERO", "price": f"3.{n:02d}"})
    seen, cursor, pages = [], 0, 0
    while cursor is not None:
        page = get(live, HISTORY.format(sku="KAL-NERO"), cursor=cursor, limit=10).json()
        seen += page["records"]
        cursor = page["next_cursor"]
        pages += 1
    assert pages == 3 and len(seen) == 26  # the content price and 25 changes
    assert len({r["seq"] for r in seen}) == 26
    too_many = get(live, HISTORY.format(sku="KAL-NERO"), limit=100_000)
    assert too_many.status_code == 422 and "limit" in too_many.text
    assert get(live, HISTORY.format(sku="KAL-NERO"), cursor=-1).status_code == 422
    bad_time = get(live, HISTORY.format(sku="KAL-NERO"), since="last tuesday")
    assert bad_time.status_code == 422 and "since" in bad_time.json()["detail"]
    late = seen[20]["time"]
    window = get(live, HISTORY.format(sku="KAL-NERO"), since=late).json()["records"]
    assert [r["seq"] for r in window] == [r["seq"] for r in seen[20:]]
    unknown = get(live, HISTORY.format(sku="NO-SUCH-SKU"))
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == f"no item 'NO-SUCH-SKU' in market '{MARKET}'"
    assert get(live, "/api/v1/markets/atlantis/items/KAL-NERO/history").status_code == 404
    assert get(live, "/healthz").status_code == 200  # still serving


def test_the_signed_head_verifies_with_the_published_key_and_a_forgery_does_not(live) -> None:
    apply(live, {"sku": "TOM-BRANDY", "price": "6.30"})
    head = get(live, f"/api/v1/markets/{MARKET}/audit/head").json()
    key = get(live, f"/api/v1/markets/{MARKET}/audit/key").json()
    assert key["alg"] == "Ed25519" and head["key"] == key["key"]
    parsed = heads.parse(head, key["key"], MARKET)
    records = get(live, f"/api/v1/markets/{MARKET}/audit/records").json()["records"]
    assert parsed.height == len(records) and parsed.hash == records[-1]["hash"]
    # Nothing changed: the same head (same signature) again.
    assert get(live, f"/api/v1/markets/{MARKET}/audit/head").json() == head
    with pytest.raises(heads.HeadError, match="signature does not verify"):
        heads.parse({**head, "height": head["height"] + 1}, key["key"], MARKET)
    private, other = heads.new_key_pair()
    forged = {**head, "height": 999, "key": other}
    forged["signature"] = heads.sign(private, canonical_bytes(
        heads.Head.model_validate(forged).document()))
    assert heads.parse(forged).height == 999  # valid by its own key...
    with pytest.raises(heads.HeadError, match="not the market's key"):
        heads.parse(forged, key["key"], MARKET)  # ...but not by the market's
    with pytest.raises(heads.HeadError, match="malformed head"):
        heads.parse({**head, "height": "3"}, key["key"], MARKET)
    with pytest.raises(heads.HeadError, match="not 'riverside'"):
        heads.parse(head, key["key"], "riverside")


def test_audit_verify_public_checks_a_live_server_from_the_outside(live) -> None:
    apply(live, {"sku": "TOM-BRANDY", "price": "6.30"}, {"sku": "KAL-NERO", "price": "3.40"})
    apply(live, {"sku": "TOM-BRANDY", "price": "6.20"})
    ok = runner.invoke(app, ["audit", "verify", "--public", live.url])
    assert ok.exit_code == 0, ok.output
    assert f"ok: {MARKET}:" in ok.stdout and "records verified against the head" in ok.stdout
    # Someone edits a published price in the database without re-hashing: caught.
    with session_scope(live.app.state.services.engine) as session:  # type: ignore[attr-defined]
        session.execute(text("UPDATE audit_public SET price = '1.00' WHERE market = :m AND "
                             "sku = 'TOM-BRANDY' AND price = '6.30'"), {"m": MARKET})
    broken = runner.invoke(app, ["audit", "verify", "--public", live.url])
    assert broken.exit_code == 1
    assert "hash does not match its content" in broken.stderr
    # A server that is not there: a clear error, exit 1.
    gone = runner.invoke(app, ["audit", "verify", "--public", "http://127.0.0.1:9"])
    assert gone.exit_code == 1 and "broken: GET http://127.0.0.1:9/api/v1/audit/heads" in \
        gone.stderr


def test_the_public_page_shows_charts_and_the_chain_head(live) -> None:
    for price in ("6.30", "6.10", "6.40"):
        apply(live, {"sku": "TOM-BRANDY", "price": price})
    page = get(live, f"/t/{MARKET}")
    assert page.status_code == 200
    head = get(live, f"/api/v1/markets/{MARKET}/audit/head").json()
    assert head["hash"] in page.text and f'id="head-height">{head["height"]}<' in page.text
    item = page.text.split('data-sku="TOM-BRANDY"', 1)[1].split("</li>", 1)[0]
    assert "<polyline" in item and "€6.40" in item and "Last verified" in item
    assert "4 records · price since" in item
    for bad in ("None", "null", "NaN", "undefined"):
        assert bad not in page.text
    missing = get(live, "/t/atlantis")
    assert missing.status_code == 404 and "no market" in missing.text


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(FIELDS)),
                       st.one_of(st.none(), st.text(), st.integers(-2**53 + 1, 2**53 - 1)),
                       min_size=1))
def test_the_fast_canonical_form_is_rfc8785(fields) -> None:
    try:
        expected = rfc8785.dumps(fields)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 - whatever rfc8785 refuses, so do we
            public.canonical(fields)
        return
    assert public.canonical(fields) == expected
    assert orjson.loads(expected) == json.loads(expected)


JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(sorted(FIELDS)), JUNK), max_size=4), JUNK)
def test_garbage_records_and_heads_are_problems_not_crashes(records, head) -> None:
    """What a verifier or witness gets from a bad server: reported, never an exception."""
    for _seq, digest, problem in public.chain(records, MARKET):
        assert isinstance(digest, str) and (problem is None or problem.startswith("record"))
    with pytest.raises(heads.HeadError):
        heads.parse(head)
