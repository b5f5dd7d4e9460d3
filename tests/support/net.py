"""Loopback ports, and waiting until a server answers its health check."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import httpx


class NotReady(RuntimeError):
    """A server did not answer `/healthz` in time, or its process exited first."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 60, process: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    """Poll `url`/healthz until it answers 200; give up early when `process` has exited.
    The error carries `log` (the server's output), where the reason is."""
    deadline = time.monotonic() + timeout
    while process is None or process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    exited = process is not None and process.poll() is not None
    said = log.read_text(errors="replace") if log is not None and log.exists() else ""
    raise NotReady(f"server at {url} {'exited' if exited else 'did not become ready'} "
                   f"within {timeout:g} s" + (f":\n{said}" if said else ""))
