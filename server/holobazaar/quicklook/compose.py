"""A display state as parts with world transforms and plain meshes (models.Composition):
the one reading of a state that the USDZ writer and the GLB writer share.

Models come from the asset pipeline's files (the compatibility file with PNG/JPEG
textures when there is one: Quick Look reads no WebP), read with trimesh; labels, panels,
images and the farm card are textured quads. Lights are left to the viewer (Quick Look and
Scene Viewer light the scene from the room)."""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from holobazaar.quicklook import labels, spacing
from holobazaar.quicklook.models import AssetReader as AssetReader  # its old home
from holobazaar.quicklook.models import Composition, Part, Surface
from holobazaar.scenes.templates import price_label, stock_text

log = logging.getLogger(__name__)

# What trimesh (and Quick Look) cannot read as it is: the pipeline's files (meshopt,
# quantized; KTX2 textures) are decoded to a plain copy first by the Node glTF tools
# (tools/gltf/plain.mjs: float geometry, PNG textures).
ENCODED = {"EXT_meshopt_compression", "KHR_draco_mesh_compression", "KHR_mesh_quantization",
           "KHR_texture_basisu"}
# What neither can: such a file is left out (named in the log).
UNREADABLE: set[str] = set()
PLAIN_TIMEOUT = 30  # seconds for one decode
PLAIN_MEMORY = 1 << 30
TEXTURE_EDGE = 1024  # model textures are scaled down to this edge (Quick Look's budget)


class Unconvertible(Exception):
    """A model file this converter cannot read; the message says why, in plain words."""


def node_matrix(node: Mapping[str, Any]) -> np.ndarray:
    """T · R · S of a state node, as the client builds it (three.js Euler 'XYZ', degrees)."""
    def three(key: str, default: float) -> list[float]:
        value = node.get(key)
        ok = isinstance(value, list) and len(value) == 3 and all(
            isinstance(v, int | float) and math.isfinite(v) for v in value)
        return [float(v) for v in value] if ok else [default] * 3  # type: ignore[union-attr]

    x, y, z = (math.radians(a) for a in three("rotation", 0.0))
    cx, sx, cy, sy = math.cos(x), math.sin(x), math.cos(y), math.sin(y)
    cz, sz = math.cos(z), math.sin(z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rx @ ry @ rz @ np.diag(three("scale", 1.0))
    m[:3, 3] = three("position", 0.0)
    return m


def world_matrices(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Each shown node's world matrix (a node hidden, or under a hidden parent, is absent)."""
    out: dict[str, np.ndarray] = {}

    def resolve(node_id: str, seen: frozenset[str]) -> np.ndarray | None:
        if node_id in out:
            return out[node_id]
        node = nodes.get(node_id)
        if node is None or node_id in seen or node.get("visible") is False:
            return None
        parent = node.get("parent")
        base = np.eye(4)
        if isinstance(parent, str) and parent in nodes:
            got = resolve(parent, seen | {node_id})
            if got is None:
                return None
            base = got
        out[node_id] = base @ node_matrix(node)
        return out[node_id]

    for node_id in nodes:
        resolve(node_id, frozenset())
    return out


def quad(width: float, height: float, image: Image.Image, *, anchor_x: str = "center",
         anchor_y: str = "middle") -> Surface:
    """A flat rectangle in the node's XY plane facing +z, showing `image`."""
    x0 = {"left": 0.0, "right": -width}.get(anchor_x, -width / 2)
    y0 = {"top": -height, "bottom": 0.0}.get(anchor_y, -height / 2)
    positions = np.array([[x0, y0, 0], [x0 + width, y0, 0], [x0 + width, y0 + height, 0],
                          [x0, y0 + height, 0]], dtype=np.float32)
    uvs = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=np.float32)  # glTF: v down
    faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
    normals = np.tile(np.array([0, 0, 1], dtype=np.float32), (4, 1))
    return Surface(positions, faces, normals, uvs, (1.0, 1.0, 1.0, 1.0), image, unlit=True)


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted smooth normals (a model without its own)."""
    tri = positions[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    acc = np.zeros_like(positions, dtype=np.float64)
    for k in range(3):
        np.add.at(acc, faces[:, k], face_n)
    length = np.linalg.norm(acc, axis=1, keepdims=True)
    length[length == 0] = 1
    return (acc / length).astype(np.float32)


def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _glb_extensions(data: bytes) -> set[str]:
    if len(data) < 20 or data[:4] != b"glTF":
        raise Unconvertible("not a binary glTF (GLB) file")
    length = struct.unpack_from("<I", data, 12)[0]
    try:
        doc = json.loads(data[20:20 + length])
    except ValueError as exc:
        raise Unconvertible("its glTF header is not readable") from exc
    return set(doc.get("extensionsRequired") or []) | set(doc.get("extensionsUsed") or [])


_MODELS: OrderedDict[str, tuple[Surface, ...]] = OrderedDict()
MODELS_KEPT = 64  # converted models kept in memory, by file (content-addressed URL)


_MODELS_LOCK = threading.Lock()  # files are made in worker threads


def model_surfaces(src: str, read: AssetReader) -> tuple[Surface, ...]:
    """A model file's surfaces, converted once per file (its URL names its content)."""
    with _MODELS_LOCK:
        if src in _MODELS:
            _MODELS.move_to_end(src)
            return _MODELS[src]
    data = read(src)
    if data is None:
        raise Unconvertible(f"{src} is not stored here")
    surfaces = tuple(convert_model(data))
    with _MODELS_LOCK:
        _MODELS[src] = surfaces
        while len(_MODELS) > MODELS_KEPT:
            _MODELS.popitem(last=False)
    return surfaces


def plain_copy(data: bytes) -> bytes:
    """The GLB with its geometry decoded and dequantized and KTX2 textures as PNG
    (tools/gltf/plain.mjs, under the glTF tools' time and memory limits)."""
    from holobazaar.assets.pipeline import Refused, gltf

    with tempfile.TemporaryDirectory(prefix="holobazaar-plain-") as tmp:
        source, target = Path(tmp) / "in.glb", Path(tmp) / "out.glb"
        source.write_bytes(data)
        try:
            gltf.run_tool("plain.mjs", [str(source), str(target)], timeout=PLAIN_TIMEOUT,
                          memory_bytes=PLAIN_MEMORY, doing="decoding it",
                          failed="its compressed parts could not be decoded")
        except (Refused, RuntimeError, OSError) as exc:
            raise Unconvertible(str(exc)) from exc
        if not target.is_file():
            raise Unconvertible("its compressed parts could not be decoded")
        return target.read_bytes()


def convert_model(data: bytes) -> list[Surface]:
    """The surfaces of a GLB (node transforms baked in): positions, normals, UVs and the
    base colour (factor and texture). Raises Unconvertible with the reason."""
    import trimesh

    extensions = _glb_extensions(data)
    needed = extensions & UNREADABLE
    if needed:
        raise Unconvertible(f"it needs {', '.join(sorted(needed))}, which this converter "
                            "cannot decode")
    if extensions & ENCODED:
        data = plain_copy(data)
    try:
        scene: Any = trimesh.load(io.BytesIO(data), file_type="glb", force="scene",
                                  process=False)
    except Exception as exc:  # trimesh raises many kinds on a broken file
        raise Unconvertible(f"trimesh cannot read it ({type(exc).__name__}: {exc})") from exc
    surfaces: list[Surface] = []
    for node in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node]
        mesh = scene.geometry.get(geometry_name)
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        positions = np.asarray(mesh.vertices, dtype=np.float64)
        positions = (positions @ transform[:3, :3].T + transform[:3, 3]).astype(np.float32)
        faces = np.asarray(mesh.faces, dtype=np.int32)
        if "vertex_normals" in mesh._cache:  # the file's own normals
            normals = np.asarray(mesh.vertex_normals, dtype=np.float64) @ np.linalg.inv(
                transform[:3, :3]).T
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
            normals = normals.astype(np.float32)
        else:
            normals = vertex_normals(positions, faces)
        surface = Surface(positions, faces, normals)
        visual = mesh.visual
        material = getattr(visual, "material", None)
        uv = getattr(visual, "uv", None)
        if material is not None:
            factor = getattr(material, "baseColorFactor", None)
            if factor is None and hasattr(material, "diffuse"):
                factor = material.diffuse
            if factor is not None:
                r, g, b, a = (float(v) / 255 for v in np.asarray(factor)[:4])
                surface.color = (_srgb_to_linear(r), _srgb_to_linear(g), _srgb_to_linear(b), a)
            else:  # glTF's default factor: the texture's colours as they are
                surface.color = (1.0, 1.0, 1.0, 1.0)
            texture = getattr(material, "baseColorTexture", None) or getattr(
                material, "image", None)
            if isinstance(texture, Image.Image) and uv is not None and len(uv) == len(positions):
                texture = texture.convert("RGBA" if "A" in texture.mode else "RGB")
                texture.thumbnail((TEXTURE_EDGE, TEXTURE_EDGE))
                surface.texture = texture
                # trimesh flips V to OpenGL's convention on load; the writers take glTF's.
                surface.uvs = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
            roughness = getattr(material, "roughnessFactor", None)
            metallic = getattr(material, "metallicFactor", None)
            surface.roughness = 1.0 if roughness is None else float(roughness)
            surface.metallic = 1.0 if metallic is None else float(metallic)
            if surface.texture is None and getattr(material, "baseColorFactor", None) is None:
                surface.roughness, surface.metallic = 0.8, 0.0
        elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind in ("vertex", "face"):
            colours = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3].mean(axis=0) / 255
            surface.color = (*(_srgb_to_linear(c) for c in colours), 1.0)  # type: ignore[assignment]
        surfaces.append(surface)
    if not surfaces:
        raise Unconvertible("it has no triangle meshes")
    return surfaces


def model_source(node: Mapping[str, Any]) -> str | None:
    """The pipeline file a phone viewer takes: the compatibility file (PNG/JPEG textures)
    when the asset has one, else the phone level of detail, else the file itself."""
    if isinstance(node.get("fallback"), str):
        return node["fallback"]
    lods = [lod.get("src") for lod in node.get("lods") or [] if isinstance(lod, dict)]
    lods = [src for src in lods if isinstance(src, str)]
    if lods:
        return lods[min(1, len(lods) - 1)]
    src = node.get("src")
    return src if isinstance(src, str) else None


def _image(read: AssetReader, src: str) -> Image.Image:
    data = read(src)
    if data is None:
        raise Unconvertible("the file is missing")
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except Exception as exc:
        raise Unconvertible(f"Pillow cannot read it ({exc})") from exc
    image = opened.convert("RGBA")
    image.thumbnail((TEXTURE_EDGE, TEXTURE_EDGE))
    return image


def price_lines(state: Mapping[str, Any]) -> dict[str, str]:
    """sku -> "Brandywine tomatoes: €4.50 / kg (In stock (18))": each item's price (or the
    notice that replaces it), unit and stock, as the display's price labels put it."""
    out = {}
    for sku, item in (state.get("items") or {}).items():
        if not isinstance(item, dict):
            continue
        unit = str(item.get("unit") or "").strip()
        price = price_label(item)
        if item.get("price") is not None and unit:
            price += f" / {unit}"
        out[sku] = f"{item.get('name') or sku}: {price} ({stock_text(item)})"
    return out


def _farm_card(farm: Mapping[str, Any]) -> tuple[str, str] | None:
    name = str(farm.get("name") or "").strip()
    if not name:
        return None
    lines = [str(farm.get("location") or "").strip(),
             " · ".join(str(p) for p in farm.get("practices") or [])]
    return name, "\n".join(line for line in lines if line)


def compose(state: Mapping[str, Any], state_hash: str, read: AssetReader) -> Composition:
    """The parts of a display state. A model that cannot be read is left out and named in
    `left_out` (and the log); the rest still composes."""
    info = state.get("display") or {}
    comp = Composition(market=str(state.get("market") or ""), display=str(info.get("id") or ""),
                       title=str(info.get("title") or info.get("id") or ""),
                       state_hash=state_hash, prices=price_lines(state))
    nodes = state.get("nodes") or {}
    worlds = world_matrices(nodes)
    ordered = sorted(worlds, key=lambda i: (nodes[i].get("order", 0), i))
    for node_id in ordered:
        node, matrix = nodes[node_id], worlds[node_id]
        kind = node.get("kind")
        try:
            if kind == "model":
                src = model_source(node)
                if src is None:
                    raise Unconvertible("its file is missing")
                comp.parts.append(Part(node_id, "model", matrix, list(model_surfaces(src, read)),
                                       text=str(node.get("label") or ""), source=src))
            elif kind == "text" and str(node.get("text") or "").strip():
                size = float(node.get("size") or 0.05)
                width = node.get("max_width")
                align = node.get("align") if node.get("align") in ("left", "right") else "center"
                image, w, h = labels.text_label(str(node["text"]), size, str(node.get("color")),
                                                float(width) if width else None, align)
                comp.parts.append(Part(node_id, "text", matrix,
                                       [quad(w, h, image, anchor_x=align)], text=node["text"]))
            elif kind == "panel":
                w, h = float(node.get("width") or 0.4), float(node.get("height") or 0.25)
                opacity = node.get("opacity")
                image = labels.panel(str(node.get("title") or ""), str(node.get("body") or ""),
                                     w, h, str(node.get("color")),
                                     0.85 if opacity is None else float(opacity))
                comp.parts.append(Part(node_id, "panel", matrix, [quad(w, h, image)],
                                       text=f"{node.get('title') or ''}\n{node.get('body') or ''}"))
            elif kind == "image" and isinstance(node.get("src"), str):
                image = _image(read, node["src"])
                w = float(node.get("width") or 0.3)
                h = w * image.height / max(1, image.width)
                comp.parts.append(Part(node_id, "image", matrix, [quad(w, h, image)],
                                       text=str(node.get("alt") or "")))
        except Unconvertible as exc:
            what = f"{node_id} ({node.get('asset') or kind})"
            comp.left_out.append(f"{what}: {exc}")
            log.warning("display %s/%s: %s left out of the phone AR file: %s",
                        comp.market, comp.display, what, exc)
    spacing.separate(comp.parts)  # what the browser's layout does at run time
    farm = _farm_card(state.get("farm") or {})
    if farm is not None and comp.parts:
        comp.parts.append(_farm_part(comp, *farm))
    return comp


def _farm_part(comp: Composition, title: str, body: str) -> Part:
    """The farm card: a small placard lying tilted on the counter in front of the display."""
    front = max((float((p.matrix @ np.append(s.positions, np.ones((len(s.positions), 1)),
                                              axis=1).T)[2].max())
                 for p in comp.parts for s in p.surfaces), default=0.0)
    w, h = 0.24, 0.09
    image = labels.panel(title, body, w, h, "#1e2a1e", 1.0)
    matrix = node_matrix({"position": [0.0, 0.03, front + 0.06], "rotation": [-60.0, 0, 0]})
    return Part("farm", "farm", matrix, [quad(w, h, image)], text=f"{title}\n{body}")
