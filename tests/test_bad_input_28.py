"""Hostile input from issues #27 and #28, each against a real server: deeply nested JSON,
frames whose `type` is not a string, texts that are empty once markup is removed,
non-finite numbers, lone surrogates, booleans for numbers and `-0`. Each gets its 4xx or
its error frame, the connection carries on, and the server log has no traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from holobazaar import jsonlimits
from holobazaar.inventory.models import ItemUpdate

from support.live import LiveServer, start_server
from support.streamclient import StreamClient

MARKET = "greenhaven"
DISPLAY = "zonneveld-greens"
CHANNEL = f"market/{MARKET}/display/{DISPLAY}"
ITEM = f"/api/v1/markets/{MARKET}/items/TOM-BRANDY"
NESTED = "[" * 5000 + "]" * 5000


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records
                if r.exc_info or r.levelno >= logging.ERROR]


@contextmanager
def server_log() -> Iterator[Records]:
    """Every log record of the in-process server: the root logger (asyncio's "Fatal error
    on transport") and uvicorn's, which does not propagate ("Exception in ASGI
    application")."""
    handler = Records()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"),
               logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture(scope="module", params=["fastws", "auto"])
def server(request, tmp_path_factory) -> Iterator[LiveServer]:
    """The server as `holobazaar serve` runs it (fastws), and behind the Starlette route."""
    kwargs = {} if request.param == "fastws" else {"ws": "auto"}
    live = start_server(tmp_path_factory.mktemp("bad-input"), **kwargs)
    yield live
    live.stop()


def send_raw(server: LiveServer, method: str, path: str, text: str,
             headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON body sent byte for byte (lone surrogates as the client wrote them)."""
    with server.client() as http:
        return http.request(method, path, content=text.encode("utf-8", "surrogatepass"),
                            headers={"content-type": "application/json", **(headers or {})})


# ---- the helper ------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "reason"), [
    (NESTED, "too_deep"), ('{"a": ' * 70 + "1" + "}" * 70, "too_deep"),
    ('{"name": "\\ud800"}', "surrogate"), ('["\\udfff"]', "surrogate"),
    ("{not json", "syntax"), ("1" * 5000, "syntax"), (b"\xff\xfe\xfd", "encoding"),
])
def test_loads_refuses_with_a_reason(text, reason):
    with pytest.raises(jsonlimits.JSONInputError) as refused:
        jsonlimits.loads(text)
    assert refused.value.reason == reason and refused.value.message


def test_loads_accepts_what_json_accepts_within_the_limits():
    assert jsonlimits.loads("[" * 64 + "]" * 64) == json.loads("[" * 64 + "]" * 64)
    assert jsonlimits.loads(json.dumps({"a": "[" * 80})) == {"a": "[" * 80}
    assert jsonlimits.loads('"\\ud83c\\udf45 \\\\ud800"') == "\U0001f345 \\ud800"
    assert jsonlimits.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    events = {"events": [{"sku": f"S{i}", "price": "1"} for i in range(500)]}
    assert jsonlimits.loads(json.dumps(events)) == events
    for too_large in ("[1, 2, 3]", '"ééé"', b"[1, 2, 3]"):
        with pytest.raises(jsonlimits.JSONInputError) as refused:
            jsonlimits.loads(too_large, max_bytes=6)
        assert refused.value.reason == "too_large"
    assert jsonlimits.loads('"éé"', max_bytes=6) == "éé"


# ---- WebSocket frames ------------------------------------------------------------------

BAD_FRAMES = [
    (NESTED, "bad_json"),
    ('{"type": "ping", "t0": ' + "[" * 3000 + "]" * 3000 + "}", "bad_json"),
    ('{"type": "ping", "t0": 1, "note": "\\ud800"}', "bad_json"),
    ('{"type": ["hello"]}', "invalid_message"),
    ('{"type": {"$ne": 1}}', "invalid_message"),
    ('{"type": 7}', "invalid_message"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES,
                         ids=["nested", "nested-field", "surrogate", "type-list", "type-object",
                              "type-number"])
def test_hostile_frames_get_an_error_frame_and_the_connection_is_still_served(
        server, frame, code):
    async def scenario():
        client = StreamClient(server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        await client.send(frame)
        error = await client.next("error")
        await client.send({"type": "ping", "t0": 1})
        pong = await client.next("pong")
        # Before hello, too (the frame is refused before the hello_required check).
        fresh = StreamClient(server.ws_url)
        await fresh.connect()
        await fresh.send(frame)
        early = await fresh.next("error")
        await fresh.hello(CHANNEL)
        await fresh.next("snapshot")
        await fresh.close()
        await client.close()
        return error, pong, early

    with server_log() as log:
        error, pong, early = asyncio.run(scenario())
    assert error["code"] == code and error["message"], error
    assert early["code"] == code
    assert pong["t0"] == 1
    assert log.tracebacks() == []


def test_many_nested_frames_end_with_the_documented_policy_close(server):
    """Each bad frame counts as an error: max_errors of them close with 1008, as the
    protocol says; never a dropped transport."""
    async def scenario():
        client = StreamClient(server.ws_url)
        await client.connect()
        await client.hello()
        for _ in range(10):
            await client.send(NESTED)
        await asyncio.sleep(0.3)
        codes = [e["code"] for e in client.errors]
        await client.close()
        return codes, client.close_code

    with server_log() as log:
        codes, close_code = asyncio.run(scenario())
    assert codes == ["bad_json"] * 10 and close_code == 1008
    assert log.tracebacks() == []


# ---- submissions and curator documents -------------------------------------------------

def submission(**extra):
    return {"kind": "recipe", "market": MARKET, "title": "Pumpkin soup", "author": "Noor",
            "ingredients": ["pumpkin"], "instructions": ["Roast it."], **extra}


@pytest.mark.parametrize(("body", "where"), [
    (submission(ingredients=["<b></b>"]), "ingredients"),
    (submission(title="<i></i>"), "title"),
    (submission(title="&nbsp;&nbsp;"), "title"),
    (submission(instructions=["Roast it.", "<p> </p>"]), "instructions"),
    (submission(kind="story", title="<script>alert(1)</script>", ingredients=[]), "title"),
])
def test_submission_empty_once_markup_is_removed_is_422(server, body, where):
    with server_log() as log:
        response = send_raw(server, "POST", "/api/v1/submissions", json.dumps(body))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [where] in [d["loc"] for d in detail]
    assert any("empty once markup is removed" in d["msg"] for d in detail)
    assert log.tracebacks() == []


@pytest.mark.parametrize("text", [NESTED, '{"kind": "story", "title": "\\ud800"}'],
                         ids=["nested", "surrogate"])
def test_submission_bad_json_is_400(server, text):
    with server_log() as log:
        response = send_raw(server, "POST", "/api/v1/submissions", text)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("body is not JSON: ")
    assert log.tracebacks() == []


@pytest.mark.parametrize(("collection", "existing", "change", "loc"), [
    ("stories", "hens-in-the-orchard", {"title": "<i></i>"}, ["title"]),
    ("stories", "hens-in-the-orchard", {"beats": [{"text": "&nbsp;"}]}, ["beats", 0, "text"]),
    ("recipes", "brandywine-panzanella", {"name": "<b> </b>"}, ["name"]),
    ("recipes", "brandywine-panzanella", {"ingredients": ["<b></b>"]},
     ["ingredients", 0, "text"]),
])
def test_curator_documents_empty_once_markup_is_removed_are_422(
        server, collection, existing, change, loc):
    path = f"/api/v1/markets/{MARKET}/{collection}"
    with server.client() as http:
        before = http.get(f"{path}/{existing}", headers=server.write_headers).json()
    doc = {**before["document"], **change}
    with server_log() as log:
        created = send_raw(server, "POST", path, json.dumps({**doc, "slug": "brand-new",
                                                             "status": "draft"}),
                           server.write_headers)
        updated = send_raw(server, "PUT", f"{path}/{existing}", json.dumps(doc),
                           server.write_headers)
    for response in (created, updated):
        assert response.status_code == 422, response.text
        assert loc in [d["loc"] for d in response.json()["detail"]]
    assert log.tracebacks() == []
    with server.client() as http:
        assert http.get(f"{path}/brand-new", headers=server.write_headers).status_code == 404
        after = http.get(f"{path}/{existing}", headers=server.write_headers).json()
    assert after["document"] == before["document"]


# ---- item changes ----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ('{"price": NaN}', "price"), ('{"price": Infinity}', "price"),
    ('{"price": -Infinity}', "price"), ('{"price": 1e400}', "price"),
    ('{"price": "1e400"}', "price"), ('{"name": "\\ud800"}', "name"),
    ('{"stock": true}', "stock"), ('{"stock": false}', "stock"), ('{"price": true}', "price"),
])
def test_bad_item_values_are_422_and_nothing_changes(server, body, field):
    with server.client() as http:
        before = http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()["offset"]
    with server_log() as log:
        response = send_raw(server, "PATCH", ITEM, body, server.write_headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [d["loc"] for d in detail] == [["body", field]] and detail[0]["msg"]
    assert "input" not in detail[0]  # the input is never echoed
    assert log.tracebacks() == []
    with server.client() as http:
        assert http.get(f"/api/v1/displays/{MARKET}/{DISPLAY}/state").json()[
            "offset"] == before


def test_negative_zero_price_is_stored_as_zero(server):
    assert str(ItemUpdate.model_validate({"price": "-0"}).price) == "0"
    assert str(ItemUpdate.model_validate({"price": -0.0}).price) == "0.0"
    # (a drop to zero is beyond the hold policy: confirmed, as docs/inventory.md says)
    for body in ('{"price": "-0", "confirm": true}', '{"price": -0.0, "confirm": true}',
                 '{"price": "-0.000", "confirm": true}'):
        response = send_raw(server, "PATCH", f"/api/v1/markets/{MARKET}/items/CAR-NANTES",
                            body, server.write_headers)
        assert response.status_code == 200, response.text
        assert response.json()["price"] == "0.00"


def test_nested_json_on_a_fastapi_body_is_400_without_a_traceback(server):
    with server_log() as log:
        response = send_raw(server, "PATCH", ITEM, NESTED, server.write_headers)
        anonymous = send_raw(server, "PATCH", ITEM, NESTED)
    assert response.status_code == 400 and response.json()["detail"]
    assert anonymous.status_code in (400, 401)  # refused either way, nothing parsed further
    assert log.tracebacks() == []


def test_feed_events_refuse_booleans_for_numbers_and_store_minus_zero_as_zero() -> None:
    """Feed rows follow the same value rules as manual edits: `"stock": true` was stored
    as 1 and `"price": "-0"` as -0.00."""
    from holobazaar.inventory import feeds

    body = (b'{"events": [{"sku": "A-1", "name": "Apples", "price": "1.00", "stock": true},'
            b' {"sku": "B-1", "name": "Beans", "price": "-0", "currency": "EUR"},'
            b' {"sku": "C-1", "source_version": false}]}')
    rows = dict(feeds.parse_json(body))
    parsed = list(rows.values())
    assert isinstance(parsed[0], feeds.RowError) and "true or false" in parsed[0].error
    assert isinstance(parsed[1], feeds.FeedEvent) and str(parsed[1].price) == "0"
    assert not str(parsed[1].price).startswith("-")
    assert isinstance(parsed[2], feeds.RowError)
