"""A small market for the browser tests: one display using every node kind, a real GLB
model, a PNG image, and a deliberately broken model file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

MARKET = "testmarket"
DISPLAY = "sunny-stall"
BROKEN_DISPLAY = "broken-stall"

MARKET_YAML = """\
format: 1
market:
  id: testmarket
  name: Test Market
  description: A market for browser tests
  currency: EUR
zones:
  - id: row-a
    name: Row A
farms:
  - id: sunny
    name: Sunny Acres & Sons
    location: Hilltop
    description: Tomatoes grown on a hill.
    practices: [organic]
items:
  - {sku: TOM-1, name: "Brandywine tomatoes", price: "4.50", unit: kg, stock: 40, farm: sunny}
  - {sku: BAS-1, name: "Basil <script>alert(1)</script>", price: "2.00", unit: bunch,
     stock: 12, farm: sunny}
"""

DISPLAY_YAML = """\
format: 1
display:
  id: sunny-stall
  zone: row-a
  title: "{{ farm.name }} stall"
  description: Tomatoes and basil from the hill
  farm: sunny
  anchor: {kind: surface}
  items: [TOM-1, BAS-1]
  nodes:
    - {id: sun, kind: light, light: directional, intensity: 2, position: [0.5, 1, 0.5]}
    - id: shelf
      kind: group
      position: [0, 0, 0]
      children:
        - {id: tomato, kind: model, asset: tomato, item: TOM-1, label: "{{ item.name }}",
           position: [-0.15, 0, 0]}
        - {id: price-tomato, kind: text, item: TOM-1, text: "{{ item.price }} / kg",
           size: 0.04, color: "#ffd23f", position: [-0.15, 0.2, 0]}
        - {id: basil-name, kind: text, item: BAS-1, text: "{{ item.name }}", size: 0.03,
           position: [0.15, 0.2, 0]}
        - {id: price-basil, kind: text, item: BAS-1, text: "{{ item.price }}", size: 0.04,
           position: [0.15, 0.15, 0]}
    - {id: farm-photo, kind: image, asset: farm-photo, width: 0.2, alt: "The {{ farm.name }} field",
       position: [0, 0.45, -0.05]}
    - {id: story, kind: panel, title: "Our story", body: "Three generations on the hill.",
       width: 0.35, height: 0.2, position: [0.45, 0.25, 0], rotation: [0, -20, 0]}
"""

BROKEN_YAML = """\
format: 1
display:
  id: broken-stall
  zone: row-a
  title: Broken model stall
  items: [TOM-1]
  nodes:
    - {id: bad-model, kind: model, asset: broken, label: "Broken tomato"}
    - {id: good-model, kind: model, asset: tomato, position: [0.3, 0, 0]}
    - {id: caption, kind: text, text: "{{ item.price }}", position: [0, 0.3, 0]}
"""

# Node counts by display, for assertions against the three.js scene.
NODE_COUNT = {DISPLAY: 8, BROKEN_DISPLAY: 3}


def tomato_glb() -> bytes:
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.07)
    sphere.apply_translation([0, 0.07, 0])
    material = trimesh.visual.material.PBRMaterial(baseColorFactor=[220, 40, 30, 255],
                                                   metallicFactor=0.0, roughnessFactor=0.6)
    sphere.visual = trimesh.visual.TextureVisuals(material=material)
    return trimesh.Scene(sphere).export(file_type="glb")


def farm_png() -> bytes:
    pixels = np.zeros((48, 64, 3), dtype=np.uint8)
    pixels[:24] = (120, 180, 255)  # sky
    pixels[24:] = (60, 150, 60)  # field
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def write_content(root: Path) -> Path:
    (root / "scenes" / MARKET / "displays").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "scenes" / MARKET / "market.yaml").write_text(MARKET_YAML)
    (root / "scenes" / MARKET / "displays" / f"{DISPLAY}.yaml").write_text(DISPLAY_YAML)
    (root / "scenes" / MARKET / "displays" / f"{BROKEN_DISPLAY}.yaml").write_text(BROKEN_YAML)
    (root / "assets" / "tomato.glb").write_bytes(tomato_glb())
    (root / "assets" / "farm-photo.png").write_bytes(farm_png())
    # Not a glTF at all: the client must show a labelled placeholder instead.
    (root / "assets" / "broken.glb").write_bytes(b"this is not a glb file")
    return root


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # git-ignored


def save_artifact(name: str, data: bytes | dict) -> Path:
    """Keep a screenshot or figures where a person can look at them after the run."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if isinstance(data, dict):
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_bytes(data)
    return path


# Where the emulated headset (IWER, office_small room, standing at the origin) looks:
# (yaw, pitch) in degrees. Measured: straight ahead is a wall 1.03 m away; 60° down straight
# ahead is a desk top 0.76 m above the floor; 60° down behind is the floor.
AIM_WALL = (0, 0)
AIM_TABLE = (0, -60)
AIM_FLOOR = (180, -60)


def aim(page, yaw_pitch: tuple[float, float], frames: int = 4) -> dict:
    """Turn the emulated headset (yaw about Y, then pitch about X) and wait for fresh hits;
    returns the last hit check (ar.js counterHit)."""
    page.evaluate("""([yaw, pitch]) => {
      const y = yaw * Math.PI / 360, x = pitch * Math.PI / 360;
      const cy = Math.cos(y), sy = Math.sin(y), cx = Math.cos(x), sx = Math.sin(x);
      window.__device.quaternion.set(cy * sx, sy * cx, -sy * sx, cy * cx);
    }""", list(yaw_pitch))
    start = page.evaluate("window.__holo.hitFrames")
    page.wait_for_function(f"window.__holo.hitFrames >= {start + frames}")
    return page.evaluate("window.__holo.lastHitCheck")


def set_price(live, price: str, sku: str = "TOM-1") -> None:
    """Change an item's price through the API, as the studio does."""
    response = live.client().patch(f"/api/v1/markets/{MARKET}/items/{sku}",
                                   json={"price": price}, headers=live.write_headers)
    assert response.status_code == 200, response.text
