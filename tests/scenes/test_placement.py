"""`holobazaar validate` warns (exit 0) about text blocks placed over each other: the
estimate in scenes/placement.py, and the command on the demo content."""

from __future__ import annotations

from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.scenes.placement import overlapping, text_extent

from support.content import REPO


def node(kind: str, position: list[float], parent: str | None = None, **fields) -> dict:
    return {"kind": kind, "position": position, "parent": parent, "visible": True, **fields}


def test_overlapping_texts_and_panels_are_found_label_stacks_are_not() -> None:
    state = {"nodes": {
        "title": node("text", [0, 0.5, 0], text="A long farm name over two words", size=0.05),
        "panel": node("panel", [0, 0.45, 0], width=0.4, height=0.2),
        "far": node("text", [2, 0, 0], text="elsewhere", size=0.05),
        "item": node("group", [0, 0, 0]),
        "price": node("text", [0, 0.1, 0], "item", text="Tomatoes — €3.00 / kg", size=0.02),
        "stock": node("text", [0, 0.09, 0], "item", text="In stock", size=0.02),
    }}
    assert overlapping(state) == [("title", "panel")]


def test_wrapping_makes_a_text_taller_not_wider() -> None:
    width, height = text_extent("x" * 100, 0.02, max_width=0.2)
    assert width == 0.2
    assert height > 0.02 * 5


def test_validate_warns_and_passes() -> None:
    result = CliRunner().invoke(app, ["validate", str(REPO)])
    assert result.exit_code == 0, result.output
    assert "ok: 1 market(s)" in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert any("wilde-boomgaard.yaml" in w and "'story'" in w and "overlap" in w
               for w in warnings), result.output
