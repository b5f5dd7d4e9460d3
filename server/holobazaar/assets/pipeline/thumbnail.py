"""A small software render of the model (flat-shaded triangles, painter's algorithm) with
Pillow: no GPU, no browser, good enough to recognise the model in a list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 256
LIGHT = np.array([0.4, 0.8, 0.45]) / np.linalg.norm([0.4, 0.8, 0.45])


def _view_matrix() -> np.ndarray:
    """A three-quarter view from the front right, slightly above."""
    yaw, pitch = np.radians(-35.0), np.radians(-20.0)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)],
                   [0, np.sin(pitch), np.cos(pitch)]])
    return rx @ ry


def render(triangles_file: Path, target: Path) -> None:
    data = np.fromfile(triangles_file, dtype="<f4")
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    if data.size >= 12:
        tris = data[: data.size // 12 * 12].reshape(-1, 12)
        points = tris[:, :9].reshape(-1, 3, 3).astype(np.float64)
        colors = np.clip(tris[:, 9:12], 0, 1)
        view = points @ _view_matrix().T
        normals = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
        lengths = np.linalg.norm(normals, axis=1)
        keep = lengths > 0
        view, colors = view[keep], colors[keep]
        normals = normals[keep] / lengths[keep, None]
        # Two-sided lighting: many models (and scans) have inconsistent winding.
        shade = 0.35 + 0.65 * np.abs(normals @ (_view_matrix() @ LIGHT))
        lo, hi = view.reshape(-1, 3).min(0), view.reshape(-1, 3).max(0)
        extent = max(hi[0] - lo[0], hi[1] - lo[1]) or 1.0
        scale = (SIZE - 16) / extent
        centre = (lo + hi) / 2
        xy = np.empty((*view.shape[:2], 2))
        xy[..., 0] = (view[..., 0] - centre[0]) * scale + SIZE / 2
        xy[..., 1] = SIZE / 2 - (view[..., 1] - centre[1]) * scale
        order = np.argsort(view[..., 2].mean(1))  # far (most negative z) first
        draw = ImageDraw.Draw(image)
        rgb = (colors * shade[:, None] * 255).astype(int)
        for i in order:
            fill = (*map(int, rgb[i]), 255)
            draw.polygon([tuple(p) for p in xy[i]], fill=fill)
    image.save(target, "PNG", optimize=True)
