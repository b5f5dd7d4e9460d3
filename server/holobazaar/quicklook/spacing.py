"""Labels and panels that would overprint each other in a phone's AR viewer are moved apart.

The browser lays text out at run time from what the camera sees (web-client layout.js);
Quick Look and Scene Viewer show the file as it is, so the file must already read well
from the front: flat parts (labels, panels, images) facing the same way at about the same
depth may not overlap. A later part (in the display's order) gives way to an earlier one,
moving along the earlier one's up axis, the shorter way, plus a small gap."""

from __future__ import annotations

import numpy as np

from holobazaar.quicklook.models import Part

FLAT = ("text", "panel", "image")
GAP = 0.01  # metres between parts moved apart
SAME_FACING = 0.9  # cosine: planes within ~25 degrees face the same way
SAME_DEPTH = 0.15  # metres along the normal: further apart, one is in front of the other
PASSES = 8


def _frame(part: Part) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World corners (n, 3) of the part's quads, its centre, unit normal and unit up."""
    local = np.concatenate([s.positions for s in part.surfaces]).astype(np.float64)
    world = local @ part.matrix[:3, :3].T + part.matrix[:3, 3]
    normal = part.matrix[:3, :3] @ np.array([0.0, 0.0, 1.0])
    up = part.matrix[:3, :3] @ np.array([0.0, 1.0, 0.0])
    normal /= max(float(np.linalg.norm(normal)), 1e-12)
    up -= normal * float(up @ normal)
    up /= max(float(np.linalg.norm(up)), 1e-12)
    return world, world.mean(axis=0), normal, up


def _extent(points: np.ndarray, origin: np.ndarray, axis: np.ndarray) -> tuple[float, float]:
    values = (points - origin) @ axis
    return float(values.min()), float(values.max())


def push_apart(a: Part, b: Part) -> np.ndarray | None:
    """The world move of `b` that ends its overlap with `a`, or None (no overlap)."""
    corners_a, centre_a, normal, up = _frame(a)
    corners_b, centre_b, normal_b, _ = _frame(b)
    if float(normal @ normal_b) < SAME_FACING or abs(float((centre_b - centre_a) @ normal)) \
            > SAME_DEPTH:
        return None
    right = np.cross(up, normal)
    ax0, ax1 = _extent(corners_a, centre_a, right)
    bx0, bx1 = _extent(corners_b, centre_a, right)
    ay0, ay1 = _extent(corners_a, centre_a, up)
    by0, by1 = _extent(corners_b, centre_a, up)
    if min(ax1, bx1) - max(ax0, bx0) <= 0.001 or min(ay1, by1) - max(ay0, by0) <= 0.001:
        return None
    down, lift = by1 - ay0 + GAP, ay1 - by0 + GAP  # b below a, or b above a
    return up * (-down if down < lift else lift)


def separate(parts: list[Part]) -> int:
    """Move flat parts so that none overprints an earlier one; returns how many moves."""
    flat = [p for p in parts if p.kind in FLAT and p.surfaces]
    moves = 0
    for _ in range(PASSES):
        moved = False
        for i, later in enumerate(flat):
            for earlier in flat[:i]:
                shift = push_apart(earlier, later)
                if shift is not None:
                    later.matrix = later.matrix.copy()
                    later.matrix[:3, 3] += shift
                    moves, moved = moves + 1, True
        if not moved:
            break
    return moves
