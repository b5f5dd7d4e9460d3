"""Bounded parsing of the files Holobazaar reads (#27): YAML (scene, show files, story
front matter), CSV feeds and Markdown. Hostile input is refused (or, for Markdown,
flattened) quickly, with a message naming the file and line or the CSV row; it never
raises, and the good rows of a CSV still apply."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.content import load_content
from holobazaar.inventory import feeds
from holobazaar.scenes.yamlsource import MAX_YAML_BYTES, Problem, parse_yaml
from holobazaar.stories import files as story_files
from holobazaar.stories.markup import (
    MAX_MARKDOWN_CHARS,
    flattened,
    markdown_text,
    plain_text,
    render_markdown,
)

from support.content import copy_content
from support.demo import DEMO_MARKET
from support.live import start_server

FAST = 2.0  # seconds any one hostile input may take (a loaded 2-core test machine)
runner = CliRunner()


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    elapsed = time.perf_counter() - started
    assert elapsed < FAST, f"{elapsed:.2f} s"
    return result


def billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefghij", "bcdefghijk"[: levels - 1], strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nest(inner: str, levels: int) -> str:
    return "[" * levels + inner + "]" * levels


# ---- YAML ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "says"), [
    (billion_laughs(), "more than 100000 values"),
    ("a: &a [*a]\n", "refers to a value that contains it"),
    # Each alias nests the one before 60 levels deeper: 2,400 levels once expanded.
    ("\n".join(["a0: &a0 " + nest("1", 60)]
               + [f"a{i + 1}: &a{i + 1} " + nest(f"*a{i}", 60) for i in range(40)]),
     "nested deeper than 64 levels"),
    ("a: " + nest("1", 5000) + "\n", "nested deeper than 64 levels"),
    ("a: !!set [1]\n", "unreadable"),
    ("a: !!timestamp soon\n", "unreadable"),
    ("a: !!bool maybe\n", "unreadable"),
    ("a: '" + "x" * MAX_YAML_BYTES + "'\n", f"larger than {MAX_YAML_BYTES} bytes"),
])
def test_hostile_yaml_is_a_problem_quickly(text, says):
    problem = timed(parse_yaml, text, "scenes/m/hostile.yaml")
    assert isinstance(problem, Problem), problem
    assert problem.file == "scenes/m/hostile.yaml" and says in problem.message


def test_anchors_within_the_limits_still_work():
    doc = parse_yaml("base: &base {scale: 1.5, y: 0}\na: *base\nb: *base\n", "x.yaml")
    assert not isinstance(doc, Problem)
    assert doc.data["a"] == doc.data["b"] == {"scale": 1.5, "y": 0}


def test_scene_and_show_files_name_the_file(tmp_path):
    content = copy_content(tmp_path / "content")
    market = content / "scenes" / DEMO_MARKET
    display = sorted((market / "displays").glob("*.yaml"))[0]
    display.write_text(billion_laughs())
    shows = market / "shows"
    shows.mkdir(exist_ok=True)
    (shows / "huge.yaml").write_bytes(b"# " + b"x" * MAX_YAML_BYTES + b"\n")
    loaded = timed(load_content, content)
    report = loaded.report()
    assert f"{display.name}:" in report and "more than 100000 values" in report
    assert "huge.yaml" in report and f"over the limit of {MAX_YAML_BYTES} bytes" in report


def test_story_front_matter_alias_bomb_is_a_problem():
    text = "---\n" + billion_laughs() + "title: Laughs\nmarket: greenhaven\n---\nBody.\n"
    problems = timed(story_files.parse_file, text, "stories/laughs.md")
    assert isinstance(problems, list) and problems[0].file == "stories/laughs.md"
    assert "more than 100000 values" in problems[0].message


# ---- CSV feeds -------------------------------------------------------------------------

def test_csv_rows_refused_on_their_own_with_their_line():
    body = (b"sku,name,price\n"
            b"A-1,Apples,1.00\n"
            b"B-1," + b"x" * 200_000 + b",2.00\n"       # over the csv module's field limit
            b"C-1,Carrots,3.00\n"
            b"D-1,Dates \xff\xfe,4.00\n"               # not UTF-8
            b"E-1," + b"y" * (feeds.MAX_CELL + 1) + b",5.00\n"
            b"F-1,Figs,6.00\n")
    rows = timed(feeds.parse_csv, body)
    by_line = {line: row for line, row in rows}
    assert [line for line, row in rows if isinstance(row, feeds.FeedEvent)] == [2, 4, 7]
    assert "field larger than field limit" in by_line[3].error
    assert by_line[5].error == "name: not UTF-8 text" and by_line[5].sku == "D-1"
    assert by_line[6].error == f"name: longer than {feeds.MAX_CELL} characters"


def test_csv_row_count_and_header_bounds():
    many = b"sku\n" + b"".join(b"S-%d\n" % i for i in range(feeds.MAX_ROWS + 1))
    with pytest.raises(feeds.FeedFormatError, match=f"more than {feeds.MAX_ROWS} rows"):
        timed(feeds.parse_csv, many)
    with pytest.raises(feeds.FeedFormatError, match=r"header \(line 1\) is not UTF-8"):
        feeds.parse_csv(b"sku,n\xffame\nA,b\n")
    events = json.dumps([{"sku": f"S-{i}"} for i in range(feeds.MAX_ROWS + 1)]).encode()
    with pytest.raises(feeds.FeedFormatError, match=f"at most {feeds.MAX_ROWS}"):
        feeds.parse_json(events)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("bounded"))
    yield live
    live.stop()


def test_inventory_import_reports_the_bad_rows_and_applies_the_rest(server, tmp_path):
    csv_file = tmp_path / "stock.csv"
    csv_file.write_bytes(b"sku,price,currency,name\n"
                         b"TOM-BRANDY,6.40,EUR,\n"
                         b"CAR-NANTES,2.10,EUR," + b"z" * 200_000 + b"\n"
                         b"KAL-NERO,3.10,EUR,Kale \xc3\x28\n"
                         b"BEE-CHIOGGIA,3.50,EUR,\n")
    result = runner.invoke(app, ["inventory", "import", str(csv_file), "--market",
                                 DEMO_MARKET, "--content", str(server.content_dir),
                                 "--data-dir", str(server.settings.data_dir)])
    assert result.exit_code == 1, result.output
    assert "stock.csv:3: -: unreadable CSV: field larger than field limit" in result.stderr
    assert "stock.csv:4: KAL-NERO: name: not UTF-8 text" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["applied"] == 2 and summary["rejected"] == 2


# ---- Markdown --------------------------------------------------------------------------

HOSTILE_MARKDOWN = {
    "nested quotes": ">" * 20_000 + " deep",
    "nested lists": "".join("  " * i + "- x\n" for i in range(400)),
    "nested image brackets": "![" * 128 * 1024,
    "nested raw html": "<div>" * 50_000 + "x",
    "emphasis run": "*" * 100_000 + "x" + "*" * 100_000,
    "table": "|a|b|\n|-|-|\n" + "|x|y|\n" * 40_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MARKDOWN))
def test_hostile_markdown_is_bounded_or_flattened(name):
    text = HOSTILE_MARKDOWN[name]
    render_markdown.cache_clear()
    html = timed(render_markdown, text)
    assert "<script" not in html
    timed(markdown_text, text)
    timed(plain_text, text)
    # Block nesting stops at maxNesting: never thousands of nested elements.
    assert html.count("<blockquote>") <= 20 and html.count("<ul>") <= 20


def test_markdown_limits_say_why():
    assert flattened("*fine*") is None
    assert "longer than" in flattened("x" * (MAX_MARKDOWN_CHARS + 1))
    assert "raw HTML shown as text" in flattened("<b>" * 300)
    assert "links shown as text" in flattened("[" * 300)


def test_flattened_markdown_keeps_the_words_and_is_escaped():
    long = ("Plain words & <script>alert(1)</script> here.\n\n" * 2000)
    html = render_markdown(long)
    assert html.startswith("<p>Plain words &amp; &lt;script&gt;")
    brackets = "[x](https://example.org) " * 300
    assert "<a " not in render_markdown(brackets) and "[x]" in render_markdown(brackets)
    assert render_markdown("Some *words* and a [link](https://example.org).") == (
        '<p>Some <em>words</em> and a <a href="https://example.org" '
        'rel="nofollow noopener ugc">link</a>.</p>\n')


def test_story_bodies_of_the_demo_render_as_before():
    for path in sorted(Path(__file__).resolve().parents[1].glob("stories/**/*.md")):
        if path.name.lower() == "readme.md":
            continue
        body = path.read_text().split("---", 2)[-1]
        assert flattened(body) is None, path
