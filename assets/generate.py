#!/usr/bin/env python3
"""Generate the Greenhaven demo assets: low-poly produce models (GLB) and two images (PNG).

    python assets/generate.py [--out assets/build]

Every model is built from trimesh primitives, coloured with glTF PBR materials (no vertex
or face colours), in real-world metres, Y up, origin at the centre of its base (the
lowest point sits on y=0), so a scene can put it on a counter with `position: [x, 0, z]`.

The output is deterministic: the same bytes on every run (no timestamps, random numbers
only from fixed seeds). A file whose bytes did not change is not rewritten, so rerunning
`make` is fast and leaves modification times alone. The loader finds assets by file stem
anywhere under assets/, so a scene refers to `assets/build/tomato.glb` as `tomato`.

Only numpy, trimesh and Pillow are used.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import trimesh
from trimesh import creation
from trimesh.visual import TextureVisuals
from trimesh.visual.material import PBRMaterial

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "build"

# ---- materials ----------------------------------------------------------------------
# name -> (RGB, roughness, metallic). Shared by all models so a palette change is one edit.
PALETTE: dict[str, tuple[tuple[int, int, int], float, float]] = {
    "tomato_red": ((214, 40, 32), 0.35, 0.0),
    "leaf_green": ((58, 128, 48), 0.7, 0.0),
    "dark_green": ((30, 82, 40), 0.75, 0.0),
    "kale_green": ((44, 92, 70), 0.8, 0.0),
    "lettuce_green": ((140, 196, 80), 0.7, 0.0),
    "carrot_orange": ((236, 120, 28), 0.6, 0.0),
    "pumpkin_orange": ((226, 110, 20), 0.55, 0.0),
    "stem_brown": ((104, 72, 40), 0.9, 0.0),
    "mushroom_cap": ((132, 92, 60), 0.8, 0.0),
    "oyster_grey": ((176, 168, 150), 0.8, 0.0),
    "mushroom_stem": ((236, 226, 204), 0.85, 0.0),
    "crust": ((176, 108, 48), 0.85, 0.0),
    "crust_dark": ((120, 70, 32), 0.9, 0.0),
    "flour": ((240, 232, 214), 0.95, 0.0),
    "honey": ((222, 150, 24), 0.15, 0.0),
    "lid_gold": ((196, 160, 70), 0.35, 0.6),
    "label_cream": ((244, 236, 214), 0.9, 0.0),
    "apple_red": ((184, 30, 40), 0.4, 0.0),
    "pear_green": ((176, 190, 70), 0.5, 0.0),
    "kraft": ((196, 160, 112), 0.95, 0.0),
    "seed_print": ((74, 140, 86), 0.8, 0.0),
    "raspberry": ((200, 24, 64), 0.5, 0.0),
    "blueberry": ((52, 60, 128), 0.45, 0.0),
    "punnet": ((210, 190, 150), 0.9, 0.0),
    "cheese_rind": ((214, 160, 60), 0.7, 0.0),
    "cheese_paste": ((246, 214, 120), 0.6, 0.0),
    "twine": ((200, 176, 130), 0.95, 0.0),
    "wood_light": ((196, 150, 98), 0.85, 0.0),
    "wood_dark": ((120, 84, 52), 0.9, 0.0),
    "chalkboard": ((36, 44, 40), 0.95, 0.0),
    "chalk": ((236, 236, 228), 0.95, 0.0),
    "beet_purple": ((110, 22, 56), 0.6, 0.0),
    "egg_shell": ((226, 196, 160), 0.6, 0.0),
    "carton": ((160, 170, 160), 0.95, 0.0),
    "terracotta": ((184, 96, 60), 0.9, 0.0),
}

_materials: dict[str, PBRMaterial] = {}


def material(name: str) -> PBRMaterial:
    if name not in _materials:
        (r, g, b), roughness, metallic = PALETTE[name]
        _materials[name] = PBRMaterial(
            name=name,
            baseColorFactor=[r, g, b, 255],
            metallicFactor=metallic,
            roughnessFactor=roughness,
        )
    return _materials[name]


# ---- geometry helpers (built Z up, converted to Y up at the end) ---------------------


def T(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> np.ndarray:
    return trimesh.transformations.translation_matrix([x, y, z])


def R(angle_deg: float, axis: tuple[float, float, float]) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(math.radians(angle_deg), axis)


def S(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[0, 0], m[1, 1], m[2, 2] = x, y, z
    return m


def chain(*matrices: np.ndarray) -> np.ndarray:
    """chain(A, B, C) applies C first, then B, then A (like A @ B @ C)."""
    out = np.eye(4)
    for m in matrices:
        out = out @ m
    return out


def sphere(r: float, sub: int = 2) -> trimesh.Trimesh:
    return creation.icosphere(subdivisions=sub, radius=r)


def cylinder(r: float, h: float, sections: int = 24) -> trimesh.Trimesh:
    """Cylinder standing on z=0."""
    return creation.cylinder(radius=r, height=h, sections=sections, transform=T(z=h / 2))


def cone(r: float, h: float, sections: int = 24) -> trimesh.Trimesh:
    """Cone with its base on z=0 and apex at z=h."""
    return creation.cone(radius=r, height=h, sections=sections)


def prism(points: list[tuple[float, float]], h: float) -> trimesh.Trimesh:
    """A convex polygon (counter-clockwise, in the xy plane) extruded from z=0 to z=h."""
    n = len(points)
    v = [(x, y, 0.0) for x, y in points] + [(x, y, h) for x, y in points]
    faces = [(0, i + 1, i) for i in range(1, n - 1)]  # bottom, facing down
    faces += [(n, n + i, n + i + 1) for i in range(1, n - 1)]  # top, facing up
    for i in range(n):
        j = (i + 1) % n
        faces += [(i, j, n + j), (i, n + j, n + i)]
    return trimesh.Trimesh(np.array(v), np.array(faces), process=False)


def flat_bottom(mesh: trimesh.Trimesh, z: float = 0.0) -> trimesh.Trimesh:
    """Squash every vertex below z onto z: a dome or loaf that sits flat on the table."""
    mesh = mesh.copy()
    v = np.array(mesh.vertices)
    v[:, 2] = np.maximum(v[:, 2], z)
    mesh.vertices = v
    return mesh


def box(x: float, y: float, z: float) -> trimesh.Trimesh:
    """Box centred in x and y, standing on z=0."""
    return creation.box(extents=[x, y, z], transform=T(z=z / 2))


class Model:
    """Parts grouped by material; one glTF mesh per material in the exported scene."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.parts: dict[str, list[trimesh.Trimesh]] = {}

    def add(self, mat: str, mesh: trimesh.Trimesh, *transforms: np.ndarray) -> Model:
        mesh = mesh.copy()
        if transforms:
            mesh.apply_transform(chain(*transforms))
        self.parts.setdefault(mat, []).append(mesh)
        return self

    def scene(self) -> trimesh.Scene:
        merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for mat in sorted(self.parts):
            vertices, faces, offset = [], [], 0
            for mesh in self.parts[mat]:
                vertices.append(np.asarray(mesh.vertices, dtype=np.float64))
                faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
                offset += len(mesh.vertices)
            merged[mat] = (np.vstack(vertices), np.vstack(faces))
        # Z up -> Y up: rotate -90 degrees about X (z becomes y, y becomes -z).
        to_y_up = R(-90, (1, 0, 0))[:3, :3]
        for mat, (v, f) in merged.items():
            merged[mat] = (v @ to_y_up.T, f)
        # Origin at the centre of the base: bottom at y=0, centred in x and z.
        allv = np.vstack([v for v, _ in merged.values()])
        lo, hi = allv.min(axis=0), allv.max(axis=0)
        shift = np.array([-(lo[0] + hi[0]) / 2, -lo[1], -(lo[2] + hi[2]) / 2])
        scene = trimesh.Scene()
        for mat, (v, f) in merged.items():
            # Round so tiny floating-point noise can never change the bytes.
            mesh = trimesh.Trimesh(np.round(v + shift, 6), f, process=False)
            mesh.visual = TextureVisuals(material=material(mat))
            scene.add_geometry(mesh, node_name=f"{self.name}-{mat}", geom_name=f"{self.name}-{mat}")
        return scene


# ---- the models -----------------------------------------------------------------------


def tomato() -> Model:
    """An heirloom beefsteak tomato, ~8 cm across, with its green calyx."""
    m = Model("tomato", "heirloom tomato, 8 cm")
    # Six lobes make the ribbed heirloom shape.
    for i in range(6):
        a = i * 60
        m.add("tomato_red", sphere(0.028), R(a, (0, 0, 1)), T(x=0.013, z=0.03), S(1, 1, 0.95))
    m.add("tomato_red", sphere(0.034), T(z=0.032), S(1, 1, 0.85))
    for i in range(5):  # calyx: five flat sepals
        m.add("leaf_green", box(0.026, 0.006, 0.002), R(i * 72, (0, 0, 1)), T(x=0.011, z=0.061))
    m.add("stem_brown", cylinder(0.0025, 0.012, 8), T(z=0.061))
    return m


def carrot() -> Model:
    """A carrot lying on its side with a tuft of leaves, ~25 cm long."""
    m = Model("carrot", "carrot with tops, 25 cm")
    # body: cone pointing along -x, resting on the ground
    m.add("carrot_orange", cone(0.018, 0.16, 16), T(z=0.018), R(-90, (0, 1, 0)))
    m.add("carrot_orange", sphere(0.018, 1), T(z=0.018), S(0.5, 1, 1))
    for i, angle in enumerate((-25, -10, 5, 20)):
        stalk = cylinder(0.0022, 0.09 - 0.01 * (i % 2), 6)
        m.add("leaf_green", stalk, T(x=0.004, z=0.018), R(angle, (0, 0, 1)), R(72, (0, 1, 0)))
    return m


def pumpkin() -> Model:
    """A Potimarron pumpkin, ~24 cm across."""
    m = Model("pumpkin", "pumpkin, 24 cm")
    for i in range(8):
        m.add("pumpkin_orange", sphere(0.07),
              R(i * 45, (0, 0, 1)), T(x=0.05, z=0.075), S(1, 0.75, 1))
    m.add("pumpkin_orange", sphere(0.09), T(z=0.075), S(1, 1, 0.8))
    m.add("stem_brown", cylinder(0.011, 0.05, 8), T(z=0.13), R(12, (1, 0, 0)))
    return m


def mushroom() -> Model:
    """A shiitake: domed brown cap on a cream stem, ~7 cm tall."""
    m = Model("mushroom", "shiitake, 7 cm")
    m.add("mushroom_stem", cylinder(0.011, 0.045, 16))
    m.add("mushroom_cap", sphere(0.038), T(z=0.042), S(1, 1, 0.55))
    m.add("mushroom_stem", cylinder(0.034, 0.003, 24), T(z=0.039))  # pale gills underneath
    return m


def oyster_cluster() -> Model:
    """A cluster of oyster mushrooms: overlapping fans from a shared base."""
    m = Model("oyster_cluster", "oyster mushroom cluster, 14 cm")
    m.add("mushroom_stem", cylinder(0.025, 0.03, 12))
    for i in range(7):
        a = i * 51.0
        tilt = 18 + 8 * (i % 3)
        m.add("oyster_grey", sphere(0.045), T(z=0.035 + 0.012 * (i % 3)),
              R(a, (0, 0, 1)), T(x=0.04), R(-tilt, (0, 1, 0)), S(1, 0.8, 0.18))
    return m


def bread_loaf() -> Model:
    """A sourdough batard with three scores, ~30 cm long."""
    m = Model("bread_loaf", "sourdough batard, 30 cm")
    body = sphere(0.1, 3).apply_transform(chain(T(z=0.025), S(1.5, 0.65, 0.6)))
    m.add("crust", flat_bottom(body))
    for i in (-1, 0, 1):
        m.add("flour", box(0.05, 0.008, 0.004), T(x=0.06 * i, z=0.079), R(35, (0, 0, 1)))
    return m


def boule() -> Model:
    """A round rye boule dusted with flour, ~20 cm across."""
    m = Model("boule", "rye boule, 20 cm")
    body = sphere(0.1, 3).apply_transform(chain(T(z=0.015), S(1, 1, 0.6)))
    m.add("crust_dark", flat_bottom(body))
    for i in range(4):
        m.add("flour", box(0.08, 0.006, 0.004), T(z=0.071), R(i * 45, (0, 0, 1)))
    return m


def honey_jar() -> Model:
    """A 450 g honey jar: amber glass, gold lid, cream label band."""
    m = Model("honey_jar", "honey jar, 12 cm")
    m.add("honey", cylinder(0.037, 0.1, 32))
    m.add("label_cream", cylinder(0.0378, 0.045, 32), T(z=0.025))
    m.add("honey", cylinder(0.03, 0.008, 32), T(z=0.1))
    m.add("lid_gold", cylinder(0.034, 0.016, 32), T(z=0.106))
    return m


def jam_jar() -> Model:
    """A small jar of preserves with a gingham-style cloth top."""
    m = Model("jam_jar", "jam jar, 9 cm")
    m.add("raspberry", cylinder(0.03, 0.075, 24))
    m.add("label_cream", cylinder(0.0305, 0.03, 24), T(z=0.02))
    m.add("label_cream", cylinder(0.038, 0.004, 12), T(z=0.075))
    m.add("raspberry", cylinder(0.032, 0.012, 24), T(z=0.078))
    m.add("twine", cylinder(0.0325, 0.004, 24), T(z=0.072))
    return m


def apple() -> Model:
    """An apple with a stalk and one leaf, ~8 cm."""
    m = Model("apple", "apple, 8 cm")
    m.add("apple_red", sphere(0.04, 3), T(z=0.037), S(1, 1, 0.92))
    m.add("stem_brown", cylinder(0.0022, 0.018, 8), T(z=0.07), R(10, (1, 0, 0)))
    m.add("leaf_green", sphere(0.012, 1), T(x=0.012, z=0.082), R(-30, (0, 1, 0)), S(1.6, 0.7, 0.12))
    return m


def pear() -> Model:
    """A Conference pear, ~11 cm tall."""
    m = Model("pear", "pear, 11 cm")
    m.add("pear_green", sphere(0.034, 3), T(z=0.033))
    m.add("pear_green", sphere(0.022, 2), T(z=0.068), S(1, 1, 1.3))
    m.add("stem_brown", cylinder(0.002, 0.02, 8), T(z=0.092), R(-12, (0, 1, 0)))
    return m


def seed_packet() -> Model:
    """A paper seed packet standing upright, 9 x 13 cm."""
    m = Model("seed_packet", "seed packet, 9 x 13 cm")
    m.add("kraft", box(0.09, 0.004, 0.13))
    m.add("seed_print", box(0.07, 0.002, 0.07), T(y=-0.0025, z=0.045))
    m.add("label_cream", box(0.07, 0.002, 0.018), T(y=-0.0025, z=0.012))
    m.add("kraft", box(0.092, 0.006, 0.01), T(z=0.125))  # folded top
    return m


def kale() -> Model:
    """A bunch of lacinato (cavolo nero) kale: long dark crinkled leaves, ~35 cm."""
    m = Model("kale", "kale bunch, 35 cm")
    for i in range(5):
        spread = (i - 2) * 9
        m.add("kale_green", sphere(0.06, 2), T(z=0.012), R(spread, (0, 0, 1)),
              T(x=0.14, z=0.004 * (i % 2)), S(2.4, 0.45, 0.1))
        m.add("lettuce_green", cylinder(0.0035, 0.3, 6), T(z=0.012), R(spread, (0, 0, 1)),
              R(90, (0, 1, 0)), T(z=-0.02))
    m.add("twine", cylinder(0.012, 0.01, 12), T(z=0.002), R(90, (0, 1, 0)))
    return m


def lettuce() -> Model:
    """A butterhead lettuce, ~16 cm across."""
    m = Model("lettuce", "butterhead lettuce, 16 cm")
    m.add("lettuce_green", sphere(0.045, 2), T(z=0.045))
    for i in range(9):
        layer = i // 5
        m.add("lettuce_green" if layer else "leaf_green", sphere(0.05, 2),
              R(i * 40 + layer * 20, (0, 0, 1)), T(x=0.035 - 0.01 * layer, z=0.04 + 0.012 * layer),
              R(-30 - 15 * layer, (0, 1, 0)), S(1, 0.9, 0.25))
    return m


def berries_basket() -> Model:
    """A 250 g punnet of raspberries and blueberries, 12 x 12 cm."""
    m = Model("berries_basket", "berry punnet, 12 cm")
    m.add("punnet", box(0.12, 0.12, 0.004))
    walls = ((1, 0, 0.004, 0.12), (-1, 0, 0.004, 0.12), (0, 1, 0.12, 0.004), (0, -1, 0.12, 0.004))
    for sx, sy, w, d in walls:
        m.add("punnet", box(w, d, 0.05), T(x=sx * 0.058, y=sy * 0.058))
    rng = np.random.default_rng(20240601)  # fixed seed: the same berries every run
    for ix in range(5):
        for iy in range(5):
            x = -0.044 + ix * 0.022 + rng.uniform(-0.002, 0.002)
            y = -0.044 + iy * 0.022 + rng.uniform(-0.002, 0.002)
            berry = "raspberry" if (ix + iy) % 3 else "blueberry"
            r = 0.011 if berry == "raspberry" else 0.008
            m.add(berry, sphere(r, 1), T(x=x, y=y, z=0.042 + rng.uniform(0, 0.008)))
    return m


def cheese_wheel() -> Model:
    """A Gouda-style wheel with a wedge lying in front of it."""
    m = Model("cheese_wheel", "cheese wheel, 24 cm")
    m.add("cheese_rind", cylinder(0.12, 0.08, 40))
    m.add("cheese_rind", cylinder(0.112, 0.088, 40), T(z=-0.004))  # bulging belly
    # wedge: a triangular prism of paste with a rind edge
    wedge = prism([(0, 0), (0.09, -0.025), (0.09, 0.025)], 0.05)
    m.add("cheese_paste", wedge, T(x=0.06, y=-0.17, z=0.0), R(200, (0, 0, 1)))
    m.add("cheese_rind", box(0.004, 0.05, 0.05), T(x=0.06 - 0.09 * math.cos(math.radians(20)),
                                                  y=-0.17 - 0.09 * math.sin(math.radians(20))),
          R(20, (0, 0, 1)))
    return m


def herb_bunch() -> Model:
    """A tied bunch of herbs (basil, thyme) lying on its side, ~20 cm."""
    m = Model("herb_bunch", "herb bunch, 20 cm")
    for i in range(7):
        spread = (i - 3) * 6
        m.add("leaf_green", cylinder(0.002, 0.2, 6),
              T(z=0.012), R(spread, (0, 0, 1)), R(90, (0, 1, 0)),
              T(z=-0.06))
        for j in range(4):
            leaf = "dark_green" if (i + j) % 2 else "leaf_green"
            m.add(leaf, sphere(0.012, 1), T(z=0.014 + 0.003 * (j % 2)), R(spread, (0, 0, 1)),
                  T(x=0.05 + 0.025 * j), S(1.5, 1, 0.45))
    m.add("twine", cylinder(0.016, 0.012, 12), T(x=-0.02, z=0.012), R(90, (0, 1, 0)), T(z=-0.006))
    return m


def potted_herb() -> Model:
    """Rosemary in a 12 cm terracotta pot, ~25 cm tall."""
    m = Model("potted_herb", "potted rosemary, 25 cm")
    pot = cylinder(0.06, 0.11, 24)
    v = np.array(pot.vertices)
    v[:, :2] *= (0.75 + 0.25 * v[:, 2:3] / 0.11)  # taper towards the base
    pot.vertices = v
    m.add("terracotta", pot)
    m.add("terracotta", cylinder(0.066, 0.02, 24), T(z=0.1))  # rim
    m.add("stem_brown", cylinder(0.055, 0.004, 24), T(z=0.104))  # soil
    for i in range(9):  # upright needled sprigs
        a = i * 40.0
        r = 0.012 + 0.02 * (i % 3)
        m.add("dark_green", cylinder(0.006, 0.11 + 0.03 * (i % 2), 6),
              T(z=0.105), R(a, (0, 0, 1)), T(x=r * 0.9), R(6 + 4 * (i % 3), (0, 1, 0)))
    return m


def beetroot() -> Model:
    """A beetroot with its tap root and stalks, ~10 cm."""
    m = Model("beetroot", "beetroot with stalks, 14 cm")
    m.add("beet_purple", sphere(0.032, 2), T(z=0.034))
    m.add("beet_purple", cone(0.012, 0.035, 10), T(z=0.01), R(180, (1, 0, 0)), T(z=-0.006))
    for i, a in enumerate((-15, 0, 15)):
        colour = "beet_purple" if i == 1 else "leaf_green"
        m.add(colour, cylinder(0.003, 0.06, 6), T(z=0.06), R(a, (1, 0, 0)))
    return m


def egg_box() -> Model:
    """Half a dozen eggs in an open carton, 16 x 11 cm."""
    m = Model("egg_box", "six eggs, 16 cm")
    m.add("carton", box(0.16, 0.11, 0.03))
    for ix in range(3):
        for iy in range(2):
            m.add("egg_shell", sphere(0.021, 2),
                  T(x=-0.05 + 0.05 * ix, y=-0.026 + 0.052 * iy, z=0.045),
                  S(1, 1, 1.3))
    return m


def crate() -> Model:
    """A slatted wooden produce crate, 60 x 40 x 18 cm: the stall's counter top."""
    m = Model("crate", "wooden crate, 60 x 40 x 18 cm")
    w, d, h = 0.6, 0.4, 0.18
    m.add("wood_light", box(w, d, 0.012))  # floor
    for z in (0.02, 0.08, 0.14):  # three slats each side
        for sy in (-1, 1):
            m.add("wood_light", box(w, 0.012, 0.04), T(y=sy * (d / 2 - 0.006), z=z))
        for sx in (-1, 1):
            m.add("wood_light", box(0.012, d, 0.04), T(x=sx * (w / 2 - 0.006), z=z))
    for sx in (-1, 1):  # corner posts
        for sy in (-1, 1):
            post = T(x=sx * (w / 2 - 0.015), y=sy * (d / 2 - 0.015))
            m.add("wood_dark", box(0.03, 0.03, h), post)
    return m


def counter() -> Model:
    """A market counter: a table 80 x 50 cm, 90 cm tall, planked top."""
    m = Model("counter", "market counter, 80 x 50 x 90 cm")
    w, d, h = 0.8, 0.5, 0.9
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = T(x=sx * (w / 2 - 0.04), y=sy * (d / 2 - 0.04))
            m.add("wood_dark", box(0.05, 0.05, h - 0.03), leg)
    for i in range(5):
        plank = T(y=-d / 2 + d / 10 + i * d / 5, z=h - 0.03)
        m.add("wood_light", box(w, d / 5 - 0.004, 0.03), plank)
    m.add("wood_dark", box(w - 0.08, d - 0.08, 0.02), T(z=0.2))  # lower shelf
    return m


def sign_board() -> Model:
    """A chalkboard sign on two legs, 50 cm wide, 45 cm tall."""
    m = Model("sign_board", "chalkboard sign, 50 x 45 cm")
    for sx in (-1, 1):
        m.add("wood_dark", box(0.025, 0.025, 0.45), T(x=sx * 0.24))
    m.add("wood_light", box(0.5, 0.022, 0.3), T(z=0.14))
    m.add("chalkboard", box(0.46, 0.024, 0.26), T(z=0.16))
    for i in range(3):
        m.add("chalk", box(0.3 - 0.06 * i, 0.026, 0.008), T(z=0.36 - 0.06 * i))
    return m


MODELS: list[Callable[[], Model]] = [
    tomato, carrot, pumpkin, mushroom, oyster_cluster, bread_loaf, boule, honey_jar, jam_jar,
    apple, pear, seed_packet, kale, lettuce, berries_basket, cheese_wheel, herb_bunch,
    beetroot, potted_herb, egg_box, crate, counter, sign_board,
]


# ---- images -----------------------------------------------------------------------------


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font: same on every machine
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def greenhaven_logo() -> bytes:
    """256 x 256 round badge: a leaf over a sun, the market's initials."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((8, 8, 248, 248), fill=(30, 58, 40, 255), outline=(240, 200, 90, 255), width=8)
    d.ellipse((78, 44, 178, 144), fill=(240, 200, 90, 255))  # sun
    d.pieslice((60, 70, 196, 206), 200, 340, fill=(96, 170, 84, 255))  # leaf halves
    d.pieslice((60, 34, 196, 170), 20, 160, fill=(70, 140, 64, 255))
    d.line((80, 120, 176, 120), fill=(30, 58, 40, 255), width=4)  # leaf vein
    font = _font(30)
    d.text((128, 196), "GREENHAVEN", fill=(244, 236, 214, 255), font=font, anchor="mm")
    return _png(img)


def greenhaven_map() -> bytes:
    """512 x 320 floor plan of the greenhouse hall with its four zones."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (512, 320), (236, 230, 210))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((8, 8, 504, 312), radius=24, outline=(60, 90, 60), width=6)
    zones = [
        ((24, 24, 248, 150), (196, 224, 170), "Orchard Row"),
        ((264, 24, 488, 150), (176, 160, 140), "Fungi Grotto"),
        ((24, 170, 248, 296), (232, 196, 140), "Bakers' Lane"),
        ((264, 170, 488, 296), (170, 200, 190), "Seed Library"),
    ]
    font = _font(22)
    for box_, colour, label in zones:
        d.rounded_rectangle(box_, radius=12, fill=colour, outline=(60, 90, 60), width=2)
        d.text(((box_[0] + box_[2]) / 2, (box_[1] + box_[3]) / 2), label, fill=(30, 40, 30),
               font=font, anchor="mm")
    d.ellipse((236, 140, 276, 180), fill=(80, 140, 200), outline=(40, 70, 110), width=3)  # fountain
    return _png(img)


def _png(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)  # no metadata, no timestamp
    return buf.getvalue()


IMAGES: dict[str, Callable[[], bytes]] = {
    "greenhaven_logo": greenhaven_logo,
    "greenhaven_map": greenhaven_map,
}


# ---- driver -------------------------------------------------------------------------------


def write_if_changed(path: Path, data: bytes) -> str:
    if path.exists() and path.read_bytes() == data:
        return "unchanged"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return "written"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: assets/build next to this script)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for build in MODELS:
        model = build()
        scene = model.scene()
        data = scene.export(file_type="glb")
        path = out / f"{model.name}.glb"
        status = write_if_changed(path, data)
        lo, hi = scene.bounds
        size = hi - lo
        print(f"{path.name:22} {status:9} {len(data):7d} B  "
              f"{size[0]:.2f} x {size[1]:.2f} x {size[2]:.2f} m  {model.description}")
    for name, draw in IMAGES.items():
        data = draw()
        path = out / f"{name}.png"
        status = write_if_changed(path, data)
        print(f"{path.name:22} {status:9} {len(data):7d} B  image")
    print(f"{len(MODELS)} models, {len(IMAGES)} images in {out} "
          f"({time.perf_counter() - start:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
