"""Authoring-time check of text placement: which text blocks of a composed display would
overlap as the curator placed them (front view, before the client's layout engine moves
them apart). `holobazaar validate` prints these as warnings: the display still works, but
the engine will have moved something (docs/scene-format.md, "Layout")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CHAR_WIDTH = 0.55  # average glyph advance of Noto Sans, in font sizes
LINE_HEIGHT = 1.25  # in font sizes


@dataclass(frozen=True)
class Block:
    node: str
    parent: str | None
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Block) -> bool:
        return (self.x0 < other.x1 and other.x0 < self.x1
                and self.y0 < other.y1 and other.y0 < self.y1)


def _origin(node_id: str, nodes: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """Position in the display's frame, summed up the parent chain (scale and rotation are
    ignored: an estimate for a warning, not the client's layout)."""
    x = y = 0.0
    seen: set[str] = set()
    current: str | None = node_id
    while current and current in nodes and current not in seen:
        seen.add(current)
        position = nodes[current].get("position") or [0, 0, 0]
        x += float(position[0])
        y += float(position[1])
        current = nodes[current].get("parent")
    return x, y


def text_extent(text: str, size: float, max_width: float | None) -> tuple[float, float]:
    """Estimated width and height in metres of a text block as troika would wrap it."""
    lines = text.split("\n") or [""]
    widths = [len(line) * size * CHAR_WIDTH for line in lines]
    count = sum(max(1, math.ceil(w / max_width)) if max_width else 1 for w in widths)
    width = min(max(widths, default=0.0), max_width) if max_width else max(widths, default=0.0)
    return width, count * size * LINE_HEIGHT


def blocks(state: dict[str, Any]) -> list[Block]:
    nodes: dict[str, dict[str, Any]] = state.get("nodes") or {}
    out = []
    for node_id, node in nodes.items():
        if node.get("visible") is False:
            continue
        x, y = _origin(node_id, nodes)
        if node.get("kind") == "text" and node.get("text"):
            width, height = text_extent(node["text"], float(node.get("size") or 0.05),
                                        node.get("max_width"))
            align = node.get("align") or "center"
            x0 = x - width / 2 if align == "center" else x - width if align == "right" else x
            out.append(Block(node_id, node.get("parent"), x0, y - height / 2, x0 + width,
                             y + height / 2))
        elif node.get("kind") == "panel":
            width, height = float(node.get("width") or 0.4), float(node.get("height") or 0.25)
            out.append(Block(node_id, node.get("parent"), x - width / 2, y - height / 2,
                             x + width / 2, y + height / 2))
    return out


def overlapping(state: dict[str, Any]) -> list[tuple[str, str]]:
    """Pairs of text blocks (texts and panels) that overlap where the curator put them.
    Texts of one group are a label stack the client stacks itself: not reported."""
    found = blocks(state)
    return [(a.node, b.node) for i, a in enumerate(found) for b in found[i + 1:]
            if a.overlaps(b) and not (a.parent and a.parent == b.parent)]
