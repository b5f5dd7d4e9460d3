"""What a display becomes for a phone's own AR viewer: parts (models, labels, panels,
images) with their world transforms and plain meshes, independent of the file format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the page's handoff needs ar_platform only: no numpy at start
    import numpy as np
    from PIL import Image

# Reads a file the state names ("/assets/<sha256>.<ext>"): its bytes, or None.
AssetReader = Callable[[str], bytes | None]
PartKind = Literal["model", "text", "panel", "image", "farm"]


@dataclass
class Surface:
    """One mesh with one material: metres, the model's own frame (node transforms baked)."""

    positions: np.ndarray  # (n, 3) float32
    faces: np.ndarray  # (m, 3) int32
    normals: np.ndarray  # (n, 3) float32
    uvs: np.ndarray | None = None  # (n, 2) float32, glTF convention (v down)
    color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)  # linear base colour
    texture: Image.Image | None = None  # base colour texture (sRGB)
    roughness: float = 0.8
    metallic: float = 0.0
    unlit: bool = False  # labels and panels: their texture is what is seen


@dataclass
class Part:
    name: str  # the node id (or "farm"), unique in the composition
    kind: PartKind
    matrix: np.ndarray  # (4, 4) column-vector convention: world = matrix @ local
    surfaces: list[Surface]
    text: str = ""  # what a label or panel says (kept in the files as metadata)
    source: str = ""  # a model's file (/assets/<sha256>.glb): shared meshes are written once


@dataclass
class Composition:
    market: str
    display: str
    title: str
    state_hash: str
    parts: list[Part] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "node (asset): why"
    # sku -> "name: 3.20 EUR per kg (in stock)": today's prices, as the page says them
    prices: dict[str, str] = field(default_factory=dict)


Platform = Literal["quicklook", "sceneviewer"]


def ar_platform(user_agent: str) -> Platform | None:
    """Which phone AR viewer a browser hands over to, from its User-Agent: iOS (iPhone,
    iPad, iPod; not Chrome's in-app Google search app, GSA, which has no Quick Look) gets
    AR Quick Look; Android gets Scene Viewer (the page drops it again when the browser
    has WebXR AR, which is better: live prices in the session); desktops keep the inline
    view. The page checks in the browser too (relList.supports('ar'), isSessionSupported)."""
    if any(tag in user_agent for tag in ("iPhone", "iPad", "iPod")):
        return None if "GSA/" in user_agent else "quicklook"
    if "Android" in user_agent and "OculusBrowser" not in user_agent:
        return "sceneviewer"
    return None
