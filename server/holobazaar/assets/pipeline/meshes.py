"""OBJ, STL and PLY to glTF with trimesh (what trimesh reads well); the glTF tool does the rest."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import trimesh

from holobazaar.assets.pipeline import Refused

FLOAT32_MAX = float(np.finfo(np.float32).max)  # glTF stores positions as 32-bit floats


def _obj_vertex(source: Path, bad: float) -> str:
    """`vertex 2 (line 5)`: the first `v` line of an OBJ holding a value out of range."""
    number = 0
    with source.open("r", encoding="utf-8", errors="replace") as lines:
        for line_number, line in enumerate(lines, 1):
            parts = line.split()
            if parts[:1] != ["v"]:
                continue
            number += 1
            try:
                values = [float(p) for p in parts[1:4]]
            except ValueError:
                continue
            if any(not np.isfinite(v) or abs(v) > FLOAT32_MAX for v in values):
                return f"vertex {number} (line {line_number})"
    return f"a vertex with {bad:g}"


def _check_range(source: Path, name: str, vertices: np.ndarray) -> None:
    """Refuse NaN, infinity and values no 32-bit float holds (1e39 would become infinity
    in the glTF), naming the vertex and the value."""
    bad = ~np.isfinite(vertices) | (np.abs(np.nan_to_num(vertices)) > FLOAT32_MAX)
    if not bad.any():
        return
    row, column = (int(i) for i in np.argwhere(bad)[0])
    value = float(vertices[row, column])
    where = (_obj_vertex(source, value) if source.suffix.lower() == ".obj"
             else f"mesh {name!r} vertex {row + 1}")
    what = ("is not a number" if np.isnan(value) else
            f"is {value:g}, beyond the largest coordinate a glTF file holds "
            f"({FLOAT32_MAX:.4g})")
    raise Refused(f"{source.name}: {where}: its {'xyz'[column]} coordinate {what}")


def to_glb(source: Path, target: Path, max_vertices: int) -> list[dict]:
    """Convert; returns warnings about what these formats cannot say (units, up axis)."""
    try:
        # trimesh and numpy warn on stderr about what they fix or cast; whatever matters
        # is refused here with a message instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scene = trimesh.load(source, force="scene", process=False)
    except Exception:  # trimesh raises many types (with internal texts) for bad files
        raise Refused(f"{source.name}: cannot read the mesh (not a valid "
                      f"{source.suffix.lstrip('.').upper()} file)") from None
    assert isinstance(scene, trimesh.Scene)  # force="scene"
    geometries = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    if not geometries or not sum(len(g.faces) for g in geometries):
        raise Refused(f"{source.name}: no triangles in the file")
    vertices = sum(len(g.vertices) for g in geometries)
    if vertices > max_vertices:
        raise Refused(f"{source.name}: {vertices} vertices, more than {max_vertices}")
    for name, g in scene.geometry.items():
        _check_range(source, name, np.asarray(g.vertices))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target.write_bytes(scene.export(file_type="glb"))
    return [{"code": "UNITS_ASSUMED", "message": f"{source.suffix.lower()[1:].upper()} files "
             "carry no units or up axis: read as metres, Y up unless units/up were given"}]
