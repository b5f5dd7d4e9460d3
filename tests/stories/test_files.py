"""Stories as files through the real command line: import (idempotent, keyed by slug;
bad files reported with file and line while the good ones are imported), export, and the
export -> import -> export round trip being byte-identical."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from holobazaar.cli import app

from support.content import REPO

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*.md"))}


def test_demo_round_trip_is_byte_identical(tmp_path):
    data = ["--data-dir", str(tmp_path / "var")]
    first = cli("import", "stories", str(REPO / "stories"), *data, "--content", str(REPO))
    assert first.exit_code == 0, first.output
    assert "imported 20, unchanged 0, failed 0" in first.output
    again = cli("import", "stories", str(REPO / "stories"), *data, "--content", str(REPO))
    assert "imported 0, unchanged 20" in again.output  # idempotent: no new revisions

    assert cli("export", "stories", str(tmp_path / "one"), *data).exit_code == 0
    assert files_of(tmp_path / "one") == files_of(REPO / "stories")
    other = ["--data-dir", str(tmp_path / "var2")]
    assert cli("import", "stories", str(tmp_path / "one"), *other).exit_code == 0
    assert cli("export", "stories", str(tmp_path / "two"), *other).exit_code == 0
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")
    assert len(files_of(tmp_path / "two")) == 22  # and two translations (translations/)


BAD_YAML = """---
kind: story
title: Broken
tags: [a, b
---
Body.
"""
BAD_FIELD = """---
kind: story
market: greenhaven
title: Fine title
language: english
---
Body.
"""
BAD_LINK = """---
kind: recipe
market: greenhaven
name: Soup
ingredients:
- text: stones
  sku: NO-SUCH-SKU
---
"""
NO_FRONT_MATTER = "Just text.\n"
GOOD = """---
kind: story
market: greenhaven
status: published
title: A good one
producers: [zonneveld]
---
Fine *story*.
"""


def test_bad_files_are_reported_and_good_ones_imported(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for name, text in {"bad-yaml.md": BAD_YAML, "bad-field.md": BAD_FIELD,
                       "bad-link.md": BAD_LINK, "plain.md": NO_FRONT_MATTER,
                       "good-one.md": GOOD}.items():
        (source / name).write_text(text)
    (source / "huge.md").write_text(GOOD + "x" * 300_000)
    result = runner.invoke(app, ["import", "stories", str(source), "--data-dir",
                                 str(tmp_path / "var"), "--content", str(REPO)])
    assert result.exit_code == 1
    output = result.output
    assert "bad-yaml.md:5: (document): YAML syntax error" in output
    assert "bad-field.md:5: language: String should match pattern" in output
    assert "bad-link.md:7: ingredients[0].sku: unknown item 'NO-SUCH-SKU' in greenhaven" \
        in output
    assert "plain.md:1:" in output and "starts with a '---' line" in output
    assert "huge.md: (document): file is larger than" in output
    assert "imported 1, unchanged 0, failed 5" in output
    export = cli("export", "stories", str(tmp_path / "out"), "--data-dir",
                 str(tmp_path / "var"))
    assert export.exit_code == 0
    assert list(files_of(tmp_path / "out")) == ["good-one.md"]


def test_import_updates_by_slug(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(REPO / "stories" / "thirty-hours-of-rye.md", source)
    data = ["--data-dir", str(tmp_path / "var")]
    assert cli("import", "stories", str(source), *data).exit_code == 0
    path = source / "thirty-hours-of-rye.md"
    path.write_text(path.read_text().replace("title: Thirty hours of rye",
                                             "title: Thirty-two hours of rye"))
    second = cli("import", "stories", str(source), *data)
    assert "imported 1, unchanged 0" in second.output
    cli("export", "stories", str(tmp_path / "out"), *data)
    assert "title: Thirty-two hours of rye" in (tmp_path / "out" /
                                                "thirty-hours-of-rye.md").read_text()
