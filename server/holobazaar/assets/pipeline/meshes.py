"""OBJ, STL and PLY to glTF with trimesh (what trimesh reads well); the glTF tool does the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from holobazaar.assets.pipeline import Refused


def to_glb(source: Path, target: Path, max_vertices: int) -> list[dict]:
    """Convert; returns warnings about what these formats cannot say (units, up axis)."""
    try:
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
        if not np.isfinite(g.vertices).all():
            raise Refused(f"{source.name}: mesh {name!r} has NaN or infinite vertices")
    target.write_bytes(scene.export(file_type="glb"))
    return [{"code": "UNITS_ASSUMED", "message": f"{source.suffix.lower()[1:].upper()} files "
             "carry no units or up axis: read as metres, Y up unless units/up were given"}]
