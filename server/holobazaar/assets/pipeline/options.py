"""What a curator chooses for one upload. Apart from the pipeline steps so that the server
can name them without importing numpy, trimesh and the rest (they load in the worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from holobazaar.assets.pipeline.inputs import Limits

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}


@dataclass
class Options:
    max_edge: int = 2048
    lod_edge: int = 1024
    ratios: tuple[float, ...] = (1.0, 0.25, 0.05)
    min_triangles: int = 64
    units: str = "m"
    up: str = "y"
    size: float | None = None  # largest dimension in metres, from the curator
    quality: int = 80
    # meshopt "high": octahedral normals, quantized colours and animation filters; smaller
    # than "medium" on every corpus model with nothing lost (tests/assets/test_corpus.py).
    meshopt_level: str = "high"
    limits: Limits = field(default_factory=Limits)
    timeout: float = 120.0
    memory_bytes: int = 2 << 30
