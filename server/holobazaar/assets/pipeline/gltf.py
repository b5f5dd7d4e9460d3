"""Runs the Node glTF tool (tools/gltf/process.mjs, glTF-Transform + meshoptimizer + sharp)
as a subprocess with its own CPU-time and memory limits."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

from holobazaar.assets.pipeline import Refused

# server/holobazaar/assets/pipeline/gltf.py -> the repository root
DEFAULT_TOOLS = Path(__file__).resolve().parents[4] / "tools" / "gltf"


def tools_dir() -> Path:
    return Path(os.environ.get("HOLOBAZAAR_GLTF_TOOLS") or DEFAULT_TOOLS)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node (Node.js 20+) is needed for glTF processing")
    return node


def check_installed() -> None:
    if not (tools_dir() / "node_modules" / "@gltf-transform" / "core").is_dir():
        raise RuntimeError(f"the glTF tools are not installed: run `npm ci` in {tools_dir()} "
                           "(make does it)")


def _limits(memory_bytes: int, cpu_seconds: int):
    def apply() -> None:
        # RLIMIT_DATA, not RLIMIT_AS: WebAssembly reserves large guard regions of address
        # space that are never backed, and an address-space limit makes it fail at start.
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    return apply


def run_tool(script: str, args: list[str], *, timeout: float, memory_bytes: int,
             doing: str, failed: str) -> Any:
    """A tools/gltf script under CPU-time and memory limits; its stdout is one JSON value.
    `doing` names the step in a refusal ("processing"), `failed` opens the message when it
    breaks ("cannot process the glTF")."""
    check_installed()
    # V8 fails fast at its heap limit; under RLIMIT_DATA alone it would thrash in GC first.
    heap_mb = max(64, memory_bytes // (1 << 20) // 2)
    try:
        result = subprocess.run(
            [node_binary(), f"--max-old-space-size={heap_mb}", str(tools_dir() / script),
             *args],
            capture_output=True, timeout=timeout, check=False,
            preexec_fn=_limits(memory_bytes, int(timeout) + 1), cwd=tools_dir())
    except subprocess.TimeoutExpired:
        raise Refused(f"{doing} took longer than {timeout:.0f} s") from None
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        if result.returncode < 0 or "heap" in " ".join(tail).lower():
            raise Refused(f"{doing} ran out of its memory or time limit") from None
        raise Refused(f"{failed}: " + " ".join(tail)[-300:]) from None


def run(job: dict[str, Any], job_file: Path, *, timeout: float, memory_bytes: int) -> dict:
    job_file.write_text(json.dumps(job))
    report = run_tool("process.mjs", [str(job_file)], timeout=timeout,
                      memory_bytes=memory_bytes, doing="processing",
                      failed="cannot process the glTF")
    if "error" in report:
        raise Refused(report["error"])
    return report


def inspect_many(paths: list[Path], positions: bool = False, timeout: float = 120) -> list[dict]:
    """Decoded summaries of glTF/GLB files, one Node process for all (tests, bench)."""
    check_installed()
    args = [node_binary(), str(tools_dir() / "inspect.mjs"), *(["--positions"] if positions
                                                                else []), *map(str, paths)]
    result = subprocess.run(args, capture_output=True, timeout=timeout, check=True,
                            cwd=tools_dir())
    return json.loads(result.stdout)


def inspect(path: Path, positions: bool = False, timeout: float = 60) -> dict:
    return inspect_many([path], positions, timeout)[0]
