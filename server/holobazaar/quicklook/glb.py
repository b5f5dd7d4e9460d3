"""A composition as one binary glTF (GLB) for Android's Scene Viewer, which opens a single
file: the display's models and its labels as textured quads, written with trimesh. The
same model file placed several times is one mesh drawn by several nodes."""

from __future__ import annotations

import io

import numpy as np

from holobazaar.quicklook.models import Composition, Surface


def _linear_to_srgb(c: float) -> float:
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def _trimesh(surface: Surface):
    import trimesh
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    r, g, b, a = surface.color
    factor = [round(255 * _linear_to_srgb(c)) for c in (r, g, b)] + [round(255 * a)]
    material = PBRMaterial(baseColorFactor=factor, roughnessFactor=surface.roughness,
                           metallicFactor=surface.metallic, doubleSided=surface.unlit,
                           alphaMode="BLEND" if surface.unlit or a < 1 else "OPAQUE")
    uv = None
    if surface.texture is not None and surface.uvs is not None:
        material.baseColorTexture = surface.texture
        # trimesh writes V flipped (OpenGL convention in, glTF out): hand it OpenGL's.
        uv = np.column_stack([surface.uvs[:, 0], 1.0 - surface.uvs[:, 1]])
    mesh = trimesh.Trimesh(vertices=surface.positions, faces=surface.faces,
                           vertex_normals=surface.normals, process=False,
                           visual=TextureVisuals(uv=uv, material=material))
    return mesh


def write_glb(comp: Composition) -> bytes:
    import trimesh

    scene = trimesh.Scene()
    made: dict[int, str] = {}  # id(surface) -> geometry name: shared models written once
    for part in comp.parts:
        for i, surface in enumerate(part.surfaces):
            key = id(surface)
            if key not in made:
                made[key] = f"{part.source.rsplit('/', 1)[-1] or part.name}-{i}"
                scene.add_geometry(_trimesh(surface), geom_name=made[key],
                                   node_name=f"{part.name}-{i}", transform=part.matrix)
            else:
                scene.graph.update(frame_to=f"{part.name}-{i}", frame_from=scene.graph.base_frame,
                                   matrix=part.matrix, geometry=made[key])
    out = io.BytesIO()
    scene.export(out, file_type="glb", include_normals=True)
    return out.getvalue()
