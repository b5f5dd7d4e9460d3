"""No traceback from outside input (#27): an exception that escapes a route, a frame
handler, the `/ws` connection itself or a background job is answered with a generic error
and an id, logged as one line (its traceback once per distinct site), counted in /metrics,
and the server keeps serving. Each failure is injected into a real server."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from holobazaar import edges
from holobazaar.stream.connection import Connection

from support.live import LiveServer, start_server
from support.streamclient import StreamClient

MARKET = "greenhaven"
CHANNEL = f"market/{MARKET}/display/zonneveld-greens"
API = f"/api/v1/markets/{MARKET}/displays"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR or r.exc_info]


@contextmanager
def server_log() -> Iterator[Records]:
    """The in-process server's records: root (the edge, asyncio) and uvicorn's own
    loggers, which do not propagate ("Exception in ASGI application")."""
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
    kwargs = {} if request.param == "fastws" else {"ws": "auto"}
    live = start_server(tmp_path_factory.mktemp("edges"), **kwargs)
    yield live
    live.stop()


class Boom(RuntimeError):
    pass


def boom(*args, **kwargs):
    raise Boom("injected failure with a /srv/secret/path in it")


def unhandled(server: LiveServer, kind: str) -> int:
    with server.client() as http:
        text = http.get("/metrics").text
    found = re.search(rf'^holobazaar_unhandled_errors_total\{{kind="{kind}"\}} (\S+)$',
                      text, re.M)
    assert found, text
    return int(float(found.group(1)))


def edge_lines(log: Records, error_id: str) -> list[logging.LogRecord]:
    return [r for r in log.records if getattr(r, "error_id", None) == error_id
            and r.name == "holobazaar.edges"]


# ---- HTTP ------------------------------------------------------------------------------

def test_route_exception_is_500_with_an_id_one_line_and_a_count(server, monkeypatch):
    before = unhandled(server, "http")
    monkeypatch.setattr(server.app.state.services.scenes, "market", boom)
    with server_log() as log, server.client() as http:
        first = http.get(API)
        second = http.get(API)
    for response in (first, second):
        assert response.status_code == 500
        body = response.json()
        assert body["detail"] == "internal error"
        assert re.fullmatch(r"[0-9a-f]{12}", body["error_id"])
        assert "secret" not in response.text and "Boom" not in response.text
        assert response.headers["x-request-id"]
    ids = [first.json()["error_id"], second.json()["error_id"]]
    assert ids[0] != ids[1]
    for error_id in ids:
        assert len(edge_lines(log, error_id)) == 1
    # Nothing else logged an error (uvicorn's "Exception in ASGI application" above all).
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []
    lines = [edge_lines(log, i)[0] for i in ids]
    assert lines[0].kind == "http" and lines[0].route == "/api/v1/markets/{market}/displays"
    assert lines[0].error == "Boom" and lines[0].site.startswith("Boom@")
    # The same site twice: its traceback once at most (the first time this process saw it).
    assert lines[1].exc_info is None
    monkeypatch.undo()  # (/metrics reads markets too)
    assert unhandled(server, "http") == before + 2
    with server.client() as http:
        assert http.get(API).status_code == 200


def test_page_exception_is_an_html_page_with_the_id(server, monkeypatch):
    monkeypatch.setattr(server.app.state.services.scenes, "market", boom)
    with server_log() as log, server.client() as http:
        response = http.get(f"/m/{MARKET}", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    error_id = re.search(r"<code>([0-9a-f]{12})</code>", response.text).group(1)
    assert "Something went wrong" in response.text and "Boom" not in response.text
    assert len(edge_lines(log, error_id)) == 1


def test_request_id_from_the_client_is_kept_when_it_is_a_short_token(server):
    with server.client() as http:
        kept = http.get("/healthz", headers={"x-request-id": "lb-42.abc"})
        replaced = http.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert kept.headers["x-request-id"] == "lb-42.abc"
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


# ---- WebSocket frames ------------------------------------------------------------------

def test_frame_handler_exception_is_an_internal_error_frame(server, monkeypatch):
    async def scenario() -> tuple[list[dict], dict]:
        client = StreamClient(server.ws_url)
        await client.connect()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        monkeypatch.setattr(Connection, "_dispatch", boom)
        await client.send({"type": "ping", "t0": 1})
        error = await client.next("error")
        monkeypatch.undo()
        await client.send({"type": "ping", "t0": 2})
        pong = await client.next("pong")
        await client.ws.close()
        return [error], pong

    before = unhandled(server, "frame")
    with server_log() as log:
        errors, pong = asyncio.run(scenario())
    error = errors[0]
    assert error["code"] == "internal_error" and error["message"] == "internal error"
    assert re.fullmatch(r"[0-9a-f]{12}", error["error_id"])
    assert pong["t0"] == 2  # the same connection carries on
    lines = edge_lines(log, error["error_id"])
    assert len(lines) == 1 and lines[0].kind == "frame"
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []
    assert unhandled(server, "frame") == before + 1


def test_hello_handler_exception_is_an_internal_error_frame(server, monkeypatch):
    async def scenario() -> dict:
        client = StreamClient(server.ws_url)
        await client.connect()
        monkeypatch.setattr(server.app.state.services.hub, "subscribe", boom)
        await client.hello(CHANNEL)
        error = await client.next("error")
        monkeypatch.undo()
        await client.hello(CHANNEL)
        await client.next("snapshot")
        await client.ws.close()
        return error

    with server_log() as log:
        error = asyncio.run(scenario())
    assert error["code"] == "internal_error"
    assert len(edge_lines(log, error["error_id"])) == 1
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []


# fastws's own edge: on the Starlette route a frame goes through `_reader`, whose edge the
# frame tests above cover.
@pytest.mark.parametrize("server", ["fastws"], indirect=True)
def test_connection_failure_closes_1011_without_a_transport_traceback(server, monkeypatch):

    async def scenario() -> int:
        client = StreamClient(server.ws_url)
        await client.connect()
        monkeypatch.setattr(Connection, "on_message", boom)
        await client.send({"type": "ping", "t0": 1})
        await asyncio.wait_for(client._reader, 5)  # ends when the server closes
        code = client.ws.close_code
        monkeypatch.undo()
        fresh = StreamClient(server.ws_url)
        await fresh.connect()
        await fresh.hello(CHANNEL)
        await fresh.next("snapshot")
        await fresh.ws.close()
        return code

    before = unhandled(server, "websocket")
    with server_log() as log:
        code = asyncio.run(scenario())
    assert code == 1011
    assert len([r for r in log.records if r.name == "holobazaar.edges"]) == 1
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []
    assert unhandled(server, "websocket") == before + 1


# ---- background jobs and the event loop ------------------------------------------------

def test_loop_errors_are_one_line_and_counted(server):
    before = unhandled(server, "job")

    async def lost_task() -> None:
        loop = asyncio.get_running_loop()
        loop.call_exception_handler({"message": "Fatal error on transport",
                                     "exception": Boom("in data_received")})

    with server_log() as log:
        server.call(lost_task)
    lines = [r for r in log.records if r.name == "holobazaar.edges"]
    assert len(lines) == 1 and lines[0].kind == "job"
    assert lines[0].context == "Fatal error on transport"
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []
    assert unhandled(server, "job") == before + 1


def test_failing_singleton_duty_is_one_line_per_failure(server):
    before = unhandled(server, "job")
    runs: list[int] = []

    async def duty() -> None:
        runs.append(1)
        raise Boom("duty")

    async def start():
        return server.app.state.services.cluster.singleton("edges-test", duty)

    with server_log() as log:
        singleton = server.call(start)
        deadline = time.monotonic() + 10
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.call(singleton.stop)
    lines = [r for r in log.records if r.name == "holobazaar.edges"]
    assert len(lines) == len(runs) >= 2 and {r.job for r in lines} == {"edges-test"}
    assert all(r.exc_info is None for r in lines[1:])  # a traceback once per site at most
    assert [r for r in log.errors() if r.name != "holobazaar.edges"] == []
    assert unhandled(server, "job") == before + len(runs)


def test_error_site_names_the_innermost_project_frame():
    try:
        boom()
    except Boom as exc:
        site = edges.error_site(exc)
    assert re.fullmatch(r"Boom@test_edges\.py:\d+", site), site


def test_metrics_list_every_kind(server):
    with server.client() as http:
        text = http.get("/metrics").text
    for kind in edges.KINDS:
        assert f'holobazaar_unhandled_errors_total{{kind="{kind}"}}' in text

