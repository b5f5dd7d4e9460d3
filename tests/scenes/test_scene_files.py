"""Scene files: loading, validation reports with file and line, the compositor, the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from holobazaar.canonical import canonical_bytes, state_hash
from holobazaar.cli import app
from holobazaar.content import SAMPLE_BINDINGS, load_content
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.loader import sample_bindings
from holobazaar.shows.routes import scene_schema

from support.content import REPO, copy_content

DISPLAY_FILE = "scenes/greenhaven/displays/zonneveld-greens.yaml"
runner = CliRunner()


def test_demo_market_is_valid_and_big_enough():
    content = load_content(REPO)
    assert content.ok, content.report()
    market = content.markets["greenhaven"]
    assert len(market.market.zones) >= 3
    assert len(market.displays) >= 8
    stalls = [d for d in market.displays.values() if d.items and d.farm]
    assert len(stalls) >= 8, "at least 8 stalls with products and a farm of origin"
    for display in market.displays.values():
        # Templates may use other domains' bindings (story, recipes_in_stock): compose with
        # the samples validation uses.
        _, errors = compose_display(market.market, display, market.seed_items(),
                                    content.asset_refs(),
                                    sample_bindings(market.market, display, SAMPLE_BINDINGS))
        assert not errors, (display.id, errors)
    kinds = {n["kind"] for d in market.displays.values()
             for n in compose_display(market.market, d, market.seed_items(),
                                      content.asset_refs())[0]["nodes"].values()}
    assert kinds == {"model", "text", "image", "panel", "group", "light"}
    result = runner.invoke(app, ["validate", str(REPO)])
    assert result.exit_code == 0, result.output
    assert "10 display(s)" in result.output or "display(s)" in result.output


def test_compositor_is_deterministic():
    first, second = load_content(REPO), load_content(REPO)
    m1, m2 = first.markets["greenhaven"], second.markets["greenhaven"]
    for display_id in m1.displays:
        s1, _ = compose_display(m1.market, m1.displays[display_id], m1.seed_items(),
                                first.asset_refs())
        s2, _ = compose_display(m2.market, m2.displays[display_id], m2.seed_items(),
                                second.asset_refs())
        assert canonical_bytes(s1) == canonical_bytes(s2)
        assert state_hash(s1) == state_hash(s2)


def _break(tmp_path: Path, relative: str, old: str, new: str) -> Path:
    content = copy_content(tmp_path / "content")
    path = content / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))
    return content


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


@pytest.mark.parametrize(
    ("old", "new", "path_part", "message"),
    [
        ("zone: orchard-row", "zone: orchard-row\n  colour: green", "display.colour",
         "unknown key 'colour'"),
        ("zone: orchard-row", "zone: nowhere", "display.zone", "unknown zone 'nowhere'"),
        ("asset: tomato", "asset: dragonfruit", ".asset", "unknown asset 'dragonfruit'"),
        ("item: TOM-BRANDY", "item: TOM-NOPE", ".item", "unknown item 'TOM-NOPE'"),
        ('text: "{{ item.name }} —', 'text: "{{ item.name } —', ".text",
         "template syntax error"),
        ('text: "{{ item.name }} —', 'text: "{{ item.nmae }} —', ".text", "cannot render"),
        ('text: "{{ item.name }} —', "text: \"{{ ''.__class__.__mro__ }} —", ".text",
         "cannot render"),
    ],
    ids=["unknown-key", "dangling-zone", "dangling-asset", "dangling-item", "template-syntax",
         "undefined-name", "sandbox"],
)
def test_problems_are_reported_with_file_line_and_path(tmp_path, old, new, path_part,
                                                       message):
    content = _break(tmp_path, DISPLAY_FILE, old, new)
    result = runner.invoke(app, ["validate", str(content)])
    assert result.exit_code == 1, result.output
    line_text = new.splitlines()[-1].strip()[:30]
    expected_line = _line_of(content / DISPLAY_FILE, line_text)
    problem = next(line for line in result.output.splitlines() if message in line)
    assert problem.startswith(f"{DISPLAY_FILE}:{expected_line}: "), problem
    assert path_part in problem


def test_wrong_type_and_yaml_errors(tmp_path):
    content = _break(tmp_path, DISPLAY_FILE, "position: [0, 0.9", "position: [oops, 0.9")
    result = runner.invoke(app, ["validate", str(content)])
    assert result.exit_code == 1
    assert "position[0]: Input should be a valid number" in result.output

    content = _break(tmp_path / "b", DISPLAY_FILE, "  nodes:", "  nodes: [")
    result = runner.invoke(app, ["validate", str(content)])
    assert result.exit_code == 1
    assert f"{DISPLAY_FILE}:" in result.output and "YAML syntax error" in result.output

    content = _break(tmp_path / "c", DISPLAY_FILE, "zone: orchard-row",
                     "zone: orchard-row\n  zone: fungi-grotto")
    result = runner.invoke(app, ["validate", str(content)])
    assert "duplicate key 'zone'" in result.output


def test_misspelt_required_field_names_the_field(tmp_path):
    content = _break(tmp_path, DISPLAY_FILE, 'text: "{{ item.name }} —', 'txt: "{{ item.name }} —')
    result = runner.invoke(app, ["validate", str(content)])
    assert "missing required key 'text'" in result.output
    assert "unknown key 'txt'" in result.output


def test_template_output_is_plain_text_data(tmp_path):
    content = _break(tmp_path, "scenes/greenhaven/market.yaml",
                     "name: Brandywine heirloom tomatoes",
                     "name: <script>alert(1)</script> tomatoes")
    loaded = load_content(content)
    assert loaded.ok, loaded.report()
    market = loaded.markets["greenhaven"]
    state, _ = compose_display(market.market, market.displays["zonneveld-greens"],
                                    market.seed_items(), loaded.asset_refs())
    texts = [n.get("text") or "" for n in state["nodes"].values()]
    # State is data: the name is kept as typed, never turned into markup or entities.
    # HTML pages escape it on output (see tests of the visitor pages).
    assert any(t.startswith("<script>alert(1)</script> tomatoes — ") for t in texts)
    assert not any("&lt;" in t for t in texts)
    assert state["items"]["TOM-BRANDY"]["name"].startswith("<script>")


def test_serve_refuses_to_start_on_broken_content(tmp_path):
    content = _break(tmp_path, DISPLAY_FILE, "zone: orchard-row", "zone: nowhere")
    result = subprocess.run(
        [sys.executable, "-m", "holobazaar", "serve", "--content", str(content),
         "--data-dir", str(tmp_path / "var"), "--port", "0"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{DISPLAY_FILE}:" in result.stderr and "unknown zone 'nowhere'" in result.stderr
    assert "refusing to start" in result.stderr


def test_published_schema_accepts_the_demo_files_and_rejects_typos():
    schema = scene_schema()  # what GET /api/v1/schema/scene publishes
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted((REPO / "scenes").rglob("*.yaml"))
    assert files
    for path in files:
        document = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(document))
        assert not errors, (path, errors[0].message)
    broken = yaml.safe_load((REPO / DISPLAY_FILE).read_text())
    broken["display"]["colour"] = "green"
    assert list(validator.iter_errors(broken))
