"""The authoring API's problem pointers point into the document the editor sent (#18): the
tag pydantic adds for a discriminated union (a node's or an anchor's kind) is left out, so
the display editor finds the field (/display/nodes/0/width, not .../0/panel/width)."""

from __future__ import annotations

from holobazaar.scenes.authoring import validate_document


def test_pointers_name_the_fields_of_the_document() -> None:
    doc = {"format": 1, "display": {
        "id": "x", "zone": "hall", "title": "t", "anchor": {"kind": "marker", "size": 0},
        "nodes": [{"id": "p", "kind": "panel", "width": 0},
                  {"id": "g", "kind": "group", "children": [
                      {"id": "t", "kind": "text", "text": "x" * 2001, "size": 0}]}]}}
    assert {p["pointer"] for p in validate_document(doc, "x")} == {
        "/display/anchor/size", "/display/nodes/0/width",
        "/display/nodes/1/children/0/text", "/display/nodes/1/children/0/size"}
