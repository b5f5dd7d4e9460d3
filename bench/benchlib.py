"""Helpers the benchmarks share: readiness, process CPU, percentiles, child processes
(stopped with the bench) and the Node tools driven by JSON lines. What they share with the
tests (ports, server processes, throwaway databases, Redis prefixes, the stream client) is
in tests/support, which importing this module puts on the path."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import net


def wait_ready(url: str, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    """support.net.wait_ready, ending the bench with its message instead of a traceback."""
    try:
        net.wait_ready(url, timeout, process)
    except net.NotReady as exc:
        raise SystemExit(str(exc)) from None


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: the child below must not import


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(AttributeError):
        LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class NodeTool:
    """A Node helper of the benchmarks (bench/node/*.js): commands as JSON lines on its
    stdin, events as JSON lines on its stdout (`{"event": ...}`; "failed" ends it)."""

    name = "node tool"

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1,
                                        preexec_fn=die_with_parent)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, event: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"{self.name}: no {event!r} within {timeout:g} s") from None
            if line is None:
                raise SystemExit(f"{self.name} exited (code {self.process.wait()}) "
                                 f"before {event!r}")
            message = json.loads(line)
            if message.get("event") == "failed":
                raise SystemExit(f"{self.name} failed: {message.get('error')}")
            if message.get("event") == event:
                return message

    def send(self, command: dict) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.process.pid)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send({"cmd": "exit"})
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Crowd(NodeTool):
    """bench/node/crowd.js: clients on many channels (each its own list), staleness per
    channel from what each offset holds. `groups`: [{"channels": [...], "count": N,
    "market"?, "display"?}] (clients with a display can react); `first_arrival`: channels
    whose offsets are measured from the first client's receipt (the pulse channel)."""

    name = "crowd load generator"

    def __init__(self, ws_url: str, groups: list[dict], folder: Path, *, base: float,
                 first_arrival: tuple[str, ...] = (), lead_ms: float = 150.0,
                 cpus: str | None = None, connect_timeout: float = 300.0,
                 batch: int = 250) -> None:
        spec = folder / "crowd.json"
        spec.write_text(json.dumps({"groups": groups, "first_arrival": list(first_arrival)}))
        command = ["node", str(Path(__file__).resolve().parent / "node" / "crowd.js"),
                   "--url", ws_url, "--spec", str(spec), "--base", str(base), "--lead-ms",
                   str(lead_ms), "--batch", str(batch), "--connect-timeout",
                   str(connect_timeout)]
        super().__init__(["taskset", "-c", cpus, *command] if cpus else command)
        self.connect_timeout = connect_timeout

    def ready(self) -> dict:
        return self.expect("ready", self.connect_timeout + 30)

    def finish(self, changes: list[dict], drain_s: float) -> dict:
        """changes: {"sku", "seq", "t" (CLOCK_MONOTONIC ms of its 2xx), "tag"}."""
        self.send({"cmd": "finish", "changes": changes, "drain_s": drain_s})
        return self.expect("result", drain_s + 180)


def monotonic_ms() -> float:
    """The clock of the Node tools' `now()` (CLOCK_MONOTONIC), in ms."""
    return time.monotonic_ns() / 1e6


def signed(secret: str, events: list[dict]) -> tuple[bytes, dict]:
    """A feed batch's body and headers, signed as a feed does (docs/inventory.md)."""
    from holobazaar.inventory.feeds import sign

    body = json.dumps({"events": events}).encode()
    ts, key = str(int(time.time())), uuid.uuid4().hex
    return body, {"X-Holobazaar-Timestamp": ts, "Idempotency-Key": key,
                  "X-Holobazaar-Signature": sign(secret, ts, key, body)}
