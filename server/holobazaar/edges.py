"""The edge of the server: where an exception nothing else handled stops.

Bad input is answered where it is read (a 4xx naming what is wrong, an `error` frame with
a stable code). What still escapes — a bug — must not reach uvicorn or asyncio, which
would log a traceback per request an attacker sends and, on `/ws`, drop the connection
without a word. `report` is the one way such an exception is recorded:

- it gets an id (`error_id`), which the caller answers with: HTTP 500
  `{"detail": "internal error", "error_id": …}` (an HTML page for pages), an `error` frame
  with code `internal_error` and the id, a 1011 close;
- it is logged as ONE line at ERROR (logger `holobazaar.edges`: kind, id, exception type,
  the code site that raised it, and the caller's fields such as the request id). The
  traceback goes with the first report of each distinct site (exception type + file and
  line) only, or with every report when DEBUG is on;
- it is counted per kind in `/metrics` (`holobazaar_unhandled_errors_total{kind=…}`).

Kinds: `http` (a request), `websocket` (the `/ws` connection itself, stream/fastws.py),
`frame` (a client frame's handler, stream/connection.py), `job` (a background task or duty,
or anything asyncio's loop would otherwise log; `loop_exception_handler`).

`Edge` is the ASGI middleware around the whole app that reports `http` errors, gives
every request an id (`X-Request-ID`, kept from the client when it is a short token) and,
with JSON logs, logs each request as one line (docs/deploy.md, "Logs")."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from holobazaar import logs

log = logging.getLogger("holobazaar.edges")
request_log = logging.getLogger("holobazaar.request")

KINDS = ("http", "websocket", "frame", "job")
MAX_SITES = 1000  # distinct sites remembered (their first traceback was logged)
_MESSAGE_CHARS = 200
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STATE_PRINCIPAL = "holobazaar_principal"  # where accounts' role check keeps the caller


class Unhandled:
    """Counts and first-seen sites of unhandled exceptions (one per process: `UNHANDLED`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({kind: 0 for kind in KINDS})
        self.sites: set[str] = set()

    def report(self, kind: str, exc: BaseException, **fields: Any) -> str:
        error_id = secrets.token_hex(6)
        self.counts[kind] += 1
        site = error_site(exc)
        first = site not in self.sites
        if first and len(self.sites) < MAX_SITES:
            self.sites.add(site)
        with_traceback = first or log.isEnabledFor(logging.DEBUG)
        text = " ".join(str(exc).split())[:_MESSAGE_CHARS]
        extra = {"kind": kind, "error_id": error_id, "error": type(exc).__name__,
                 "error_message": text, "site": site,
                 **{k: v for k, v in fields.items() if v is not None}}
        log.error("unhandled %s error %s: %s at %s%s", kind, error_id, type(exc).__name__,
                  site, _describe(fields), extra=extra,
                  exc_info=(type(exc), exc, exc.__traceback__) if with_traceback else None)
        return error_id


UNHANDLED = Unhandled()


def report(kind: str, exc: BaseException, **fields: Any) -> str:
    """Record an exception nothing else handled (see the module text); returns its id."""
    return UNHANDLED.report(kind, exc, **fields)


def error_site(exc: BaseException) -> str:
    """`Type@file:line` of the innermost frame of the project's own code (else the
    innermost frame): the same bug at the same place is one site however often it hits."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if "holobazaar" in Path(f.filename).parts]
    innermost = ours or frames
    where = (f"{Path(innermost[-1].filename).name}:{innermost[-1].lineno}" if innermost
             else "?")
    return f"{type(exc).__name__}@{where}"


def _describe(fields: dict[str, Any]) -> str:
    shown = [f"{k}={v}" for k, v in fields.items() if v is not None and k != "traceback"]
    return f" ({', '.join(shown)})" if shown else ""


class UnhandledCollector:
    """Prometheus collector for `/metrics` (app.state.metric_collectors)."""

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("holobazaar_unhandled_errors", "Exceptions nothing "
                                     "handled, answered with a generic error and an id, by "
                                     "kind (http, websocket, frame, job)", labels=["kind"])
        for kind, value in sorted(UNHANDLED.counts.items()):
            family.add_metric([kind], value)
        yield family


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's last resort ("Task exception was never retrieved", "Fatal error on
    transport", a failing callback): one line and a count instead of a traceback each."""
    exc = context.get("exception")
    message = context.get("message") or "asyncio error"
    if isinstance(exc, Exception):
        task = context.get("task") or context.get("future")
        name = task.get_name() if isinstance(task, asyncio.Task) else None
        report("job", exc, context=message, task=name)
    elif exc is not None:  # KeyboardInterrupt, SystemExit: asyncio's own handling
        loop.default_exception_handler(context)
    else:
        log.warning("asyncio: %s", message)


# ---- the ASGI edge -------------------------------------------------------------------

Page = Callable[[dict, str], Awaitable[tuple[bytes, str]] | tuple[bytes, str]]


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def wants_page(scope: dict) -> bool:
    """A browser asking for a page (not the API): the error comes as an HTML page."""
    path = scope.get("path", "")
    if path.startswith("/api/"):
        return False
    accept = _header(scope, b"accept") or ""
    return "text/html" in accept


def route_of(scope: dict) -> str | None:
    route = scope.get("route")
    return getattr(route, "path", None) or getattr(route, "path_format", None)


def caller_of(scope: dict) -> str | None:
    principal = scope.get(_STATE_PRINCIPAL)
    actor = getattr(principal, "actor", None)
    return actor if isinstance(actor, str) else None


def market_of(scope: dict) -> str | None:
    params = scope.get("path_params") or {}
    market = params.get("market")
    return market if isinstance(market, str) else None


class Edge:
    """Plain ASGI middleware, the outermost one the app adds (web/app.py)."""

    def __init__(self, app: Any, *, access_log: bool = False, page: Page | None = None,
                 ) -> None:
        self.app = app
        self.access_log = access_log
        self.page = page

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status: int | None = None
        error_id: str | None = None

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id.encode())]
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if type(exc).__name__ == "ClientDisconnect":  # the client left: nothing to say
                status = status or 499
            else:
                error_id = report("http" if kind == "http" else "websocket", exc,
                                  request_id=request_id, method=scope.get("method"),
                                  path=scope.get("path"), route=route_of(scope))
                if status is None:
                    status = 500 if kind == "http" else 1011
                    await self._answer(scope, send, error_id, request_id)
        finally:
            logs.request_id.reset(token)
            if self.access_log and kind == "http":
                self._log_request(scope, request_id, status, started, error_id)

    async def _answer(self, scope: dict, send: Any, error_id: str, request_id: str) -> None:
        try:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1011,
                            "reason": f"internal error {error_id}"})
                return
            body, media = await self._body(scope, error_id)
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", media.encode()), (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"), (b"x-request-id", request_id.encode())]})
            await send({"type": "http.response.body", "body": body})
        except Exception:  # the client is gone, or the transport closed: nothing to answer
            log.debug("could not answer error %s", error_id, exc_info=True)

    async def _body(self, scope: dict, error_id: str) -> tuple[bytes, str]:
        if self.page is not None and wants_page(scope):
            try:
                made = self.page(scope, error_id)
                return await made if inspect.isawaitable(made) else made
            except Exception:
                log.debug("error page failed", exc_info=True)
        import json

        return (json.dumps({"detail": "internal error", "error_id": error_id}).encode(),
                "application/json")

    def _log_request(self, scope: dict, request_id: str, status: int | None,
                     started: float, error_id: str | None) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        path, method = scope.get("path", ""), scope.get("method", "")
        fields = {"request_id": request_id, "method": method, "path": path,
                  "route": route_of(scope), "status": status, "duration_ms": duration_ms,
                  "user": caller_of(scope), "market": market_of(scope),
                  "error_id": error_id}
        request_log.info("%s %s %s %.1f ms", method, path, status, duration_ms,
                         extra={k: v for k, v in fields.items() if v is not None})
