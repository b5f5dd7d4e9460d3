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
