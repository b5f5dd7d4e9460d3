"""The app under uvicorn on a free loopback port, in a thread of the test process, over a
private copy of the demo content and a private data folder: its hub and database are in
reach of the test (`LiveServer.call`, `app.state`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from holobazaar.config import Settings
from holobazaar.stream.fastws import UVICORN_WS
from holobazaar.web.app import create_app

from support.content import copy_content


@dataclass
class LiveServer:
    settings: Settings
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws"

    @property
    def content_dir(self) -> Path:
        return self.settings.content_dir

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    @property
    def write_headers(self) -> dict[str, str]:
        """Authorization for write routes (accounts): an admin API token, made once."""
        token = getattr(self, "_admin_token", None)
        if token is None:
            from holobazaar.accounts import service

            token, _ = service.create_token(self.app.state.services.engine,  # type: ignore[attr-defined]
                                            "tests admin", ["admin"], [], None, actor="tests")
            self._admin_token = token
        return {"Authorization": f"Bearer {token}"}

    def call(self, coro_fn, *args, timeout: float = 10):
        """Run a coroutine function on the server's own event loop (to reach the hub)."""
        loop = self.server_loop
        return asyncio.run_coroutine_threadsafe(coro_fn(*args), loop).result(timeout)

    def set_clock(self, clock, when) -> float:
        """Set a ManualClock the server runs on (on its loop); the monotonic time it was set."""

        async def set_it() -> None:
            clock.set(when)

        self.call(set_it)
        return time.monotonic()

    @property
    def server_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_server(tmp: Path, ws: str = UVICORN_WS, clock=None, **overrides) -> LiveServer:
    """`ws`: uvicorn's WebSocket protocol (the one `holobazaar serve` runs by default);
    `clock`: the server's clock for schedules (a holobazaar.scenes.clock.ManualClock)."""
    content = overrides.pop("content_dir", None) or copy_content(tmp / "content")
    # Bound here and handed to uvicorn: a port only looked up as free could be taken by
    # another test process before the server bound it ("address already in use").
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", 0))
    settings = Settings(port=listening.getsockname()[1], data_dir=tmp / "var",
                        content_dir=content, **overrides)
    app = create_app(settings, clock=clock)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                            ws_max_size=settings.max_frame_bytes * 16, lifespan="on",
                            ws=ws, proxy_headers=False)  # as `holobazaar serve` runs it
    server = uvicorn.Server(config)
    live = LiveServer(settings, app, server, threading.Thread(target=lambda: None))

    def run() -> None:
        loop = asyncio.new_event_loop()
        live._loop = loop  # type: ignore[attr-defined]
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(sockets=[listening]))

    live.thread = threading.Thread(target=run, daemon=True, name="live-server")
    live.thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not live.thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return live
