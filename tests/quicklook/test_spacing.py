"""Labels and panels that would overprint each other in the phone AR file are moved apart
(quicklook/spacing.py); parts in front of others, or turned away, are left where they are."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image

from holobazaar.quicklook.compose import node_matrix, quad
from holobazaar.quicklook.models import Part
from holobazaar.quicklook.spacing import GAP, push_apart, separate


def label(name: str, position: list[float], width: float = 0.2, height: float = 0.05,
          rotation: tuple[float, float, float] = (0.0, 0.0, 0.0), kind: str = "text") -> Part:
    image = Image.new("RGBA", (8, 8))
    return Part(name, kind, node_matrix({"position": position, "rotation": list(rotation)}),
                [quad(width, height, image)])


def test_overlapping_labels_are_moved_apart_the_shorter_way():
    first = label("price", [0.0, 0.20, 0.0])
    second = label("stock", [0.05, 0.18, 0.02])  # 3 cm of the first's 5 cm overlapped
    assert separate([first, second]) == 1
    assert np.allclose(first.matrix, label("price", [0.0, 0.20, 0.0]).matrix)  # stays
    y = second.matrix[1, 3]
    assert np.isclose(y, 0.20 - 0.05 - GAP)  # below the first, with the gap
    assert push_apart(first, second) is None


def test_parts_in_front_or_turned_away_are_left_alone():
    board = label("board", [0.0, 0.3, 0.0], width=0.4, height=0.3, kind="panel")
    in_front = label("tag", [0.0, 0.3, 0.3])  # 30 cm nearer the visitor
    turned = label("side", [0.05, 0.3, 0.0], rotation=(0.0, 90.0, 0.0))
    model = label("crate", [0.0, 0.3, 0.0], kind="model")
    before = [p.matrix.copy() for p in (in_front, turned, model)]
    assert separate([board, in_front, turned, model]) == 0
    assert all(np.allclose(p.matrix, m) for p, m in
               zip((in_front, turned, model), before, strict=True))


def test_a_stack_is_resolved_in_order():
    parts = [label(f"l{i}", [0.0, 0.2, 0.0]) for i in range(4)]
    separate(parts)
    ys = sorted(p.matrix[1, 3] for p in parts)
    assert all(b - a >= 0.05 + GAP - 1e-9 for a, b in itertools.pairwise(ys))
