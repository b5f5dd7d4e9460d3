"""Thumbnails of the models and images a market's displays use, for the studio's overview.

An uploaded asset has the pipeline's own thumbnail (a file of role `thumbnail`). A content
file under `assets/` (the demo's generated models, hand-made pictures) never went through
the pipeline: its thumbnail is drawn here from the file itself — a model's triangles, each
in its material's base colour, by the pipeline's software renderer (pipeline/thumbnail.py),
an image scaled down — and kept by content hash, so it is drawn once per file version."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy.engine import Engine

from holobazaar.assets import service
from holobazaar.assets.pipeline import thumbnail

MAX_TRIANGLES = 20_000  # as the pipeline's thumbnailTriangles
MODEL_SUFFIXES = {".glb"}


def stored_thumbnail_url(engine: Engine, market: str, name: str) -> str | None:
    """The pipeline's thumbnail of the newest ready upload of `name` in the market."""
    url = None
    for asset in service.list_assets(engine, market):
        if asset.name == name and asset.status == "ready":
            url = next((f.url for f in asset.files if f.role == "thumbnail"), url)
    return url


def _triangles(glb: Path) -> np.ndarray:
    """(n, 12) float32: three vertices and an RGB colour (0-1) per triangle, in the
    layout pipeline/thumbnail.py reads."""
    import trimesh  # only when a content model's thumbnail is drawn

    scene = trimesh.load(glb, force="scene")
    assert isinstance(scene, trimesh.Scene)  # force="scene"
    parts = []
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        mesh = scene.geometry[name]
        if not hasattr(mesh, "faces") or len(mesh.faces) == 0:
            continue
        vertices = trimesh.transform_points(mesh.vertices, transform)
        material = getattr(mesh.visual, "material", None)
        color = getattr(material, "baseColorFactor", None)
        if color is None:
            color = getattr(material, "main_color", None)
        rgb = (np.asarray(color[:3], dtype=np.float64) / 255.0 if color is not None
               else np.array([0.7, 0.7, 0.7]))
        tris = vertices[mesh.faces].reshape(-1, 9)
        parts.append(np.hstack([tris, np.tile(rgb, (len(tris), 1))]))
    if not parts:
        return np.zeros((0, 12), dtype="<f4")
    out = np.vstack(parts)
    if len(out) > MAX_TRIANGLES:
        out = out[np.linspace(0, len(out) - 1, MAX_TRIANGLES).astype(int)]
    return out.astype("<f4")


def content_thumbnail(source: Path, sha256: str, cache: Path) -> Path:
    """The PNG thumbnail of a content model or image (drawn on first use)."""
    target = cache / f"{sha256}.png"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".", suffix=".png")
    os.close(fd)
    try:
        if source.suffix.lower() in MODEL_SUFFIXES:
            raw = Path(tmp).with_suffix(".bin")
            try:
                _triangles(source).tofile(raw)
                thumbnail.render(raw, Path(tmp))
            finally:
                raw.unlink(missing_ok=True)
        else:
            with Image.open(source) as img:
                img.thumbnail((thumbnail.SIZE, thumbnail.SIZE))
                img.save(tmp, "PNG")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
