"""glTF for the asset tests and benchmarks: where the corpus is, small (hostile) models."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

from support.content import REPO

TOOLS = REPO / "tools" / "gltf"
# ../shared next to the repository (a git worktree sits one level deeper); or set
# HOLOBAZAAR_GLTF_CORPUS. Read in place, never copied into the repository.
CORPUS = next((p for p in (
    Path(os.environ.get("HOLOBAZAAR_GLTF_CORPUS", "/nonexistent")),
    REPO.parent / "shared" / "corpus" / "gltf",
    REPO.parent.parent / "shared" / "corpus" / "gltf") if p.is_dir()),
    REPO.parent / "shared" / "corpus" / "gltf")


def corpus_entry(model: str) -> Path:
    """The model's main file in the corpus; the test is skipped, saying where it looked,
    when the corpus is not there (as the corpus modules are)."""
    folder = CORPUS / model
    if not folder.is_dir():
        import pytest

        pytest.skip(f"no glTF corpus at {CORPUS}")
    return next(p for p in sorted(folder.iterdir()) if p.suffix in (".glb", ".gltf"))


def side_files(entry: Path) -> list[Path]:
    if entry.suffix != ".gltf":
        return []
    return [p for p in sorted(entry.parent.iterdir())
            if p.suffix.lower() in (".bin", ".png", ".jpg", ".jpeg", ".ktx2")]


def glb(document: dict, binary: bytes = b"") -> bytes:
    """A GLB container around a glTF JSON document and an optional BIN chunk."""
    data = json.dumps(document).encode()
    data += b" " * (-len(data) % 4)
    chunks = struct.pack("<I4s", len(data), b"JSON") + data
    if binary:
        binary += b"\0" * (-len(binary) % 4)
        chunks += struct.pack("<I4s", len(binary), b"BIN\0") + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def triangle_glb(positions: list[float], *, accessor_count: int | None = None,
                 declared_length: int | None = None) -> bytes:
    """One triangle (or whatever `positions` holds), optionally lying about its sizes."""
    binary = struct.pack(f"<{len(positions)}f", *positions)
    count = len(positions) // 3
    document = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"byteLength": declared_length or len(binary)}],
        "bufferViews": [{"buffer": 0, "byteLength": declared_length or len(binary)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "type": "VEC3",
                       "count": accessor_count or count,
                       "min": [0, 0, 0], "max": [1, 1, 0]}],
    }
    return glb(document, binary)


TRIANGLE = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels (1 bit each): tiny on disk, enormous
    decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + \
        chunk(b"IEND", b"")
