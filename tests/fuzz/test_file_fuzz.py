"""Fuzzing the files Holobazaar reads: inventory feeds (JSON and CSV, inventory/feeds.py),
scene and show YAML (scenes/yamlsource.py, scenes/loader.py, shows/loader.py), story
front matter and story imports (stories/files.py).

Each fuzzer starts from a valid file and breaks it (lines dropped, doubled, cut, values
replaced by other types, hostile YAML and JSON constructs: alias bombs, self-referring
aliases, deep nesting, complex keys, tags, huge numbers, dates that do not exist, control
characters, lone surrogates, other encodings), or writes garbage. The property: the input
gets its normal answer - feeds a `FeedFormatError` or per-row `RowError`s, YAML and story
files `Problem`s with a message (the loader never raises) - never another exception, and
every message can be sent as UTF-8 (JSON answers, the terminal of `holobazaar validate`).
"""

from __future__ import annotations

import json
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from fuzz.budget import fuzz_settings
from holobazaar.content import load_content
from holobazaar.inventory import feeds
from holobazaar.scenes.yamlsource import Problem
from holobazaar.stories import files as story_files
from holobazaar.stories.files import MarketFacts

from support.markets import STALL_DISPLAY, STALL_MARKET

REPO = Path(__file__).resolve().parents[2]
SECONDS = 20  # any one input: an alias bomb must not run for minutes


@contextmanager
def time_limit(seconds: int = SECONDS) -> Iterator[None]:
    def expired(signum, frame):
        raise AssertionError(f"input took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def sendable(text: str) -> None:
    """A message can go out as UTF-8 JSON and to a terminal."""
    json.dumps(text, ensure_ascii=False).encode("utf-8")


# ---- generic breakage ------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=30), st.sampled_from(["", "-0", "1e400", "NaN", "²"]))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4), max_leaves=10)

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(7))
YAML_SNIPPETS = [
    ALIAS_BOMB, "x: &r [*r]\n", "x: &r {y: *r}\n", "[" * 3000 + "]" * 3000,
    "x: " + "[" * 100 + "]" * 100 + "\n", "? [a, b]\n: 1\n", "? {a: 1}\n: 1\n",
    "x: !!python/object/apply:os.system [echo]\n", "x: !!binary aGVsbG8=\n", "x: !!set {a}\n",
    "x: 1" + "0" * 5000 + "\n", "x: 0x" + "f" * 5000 + "\n", "x: 2020-02-30\n",
    "x: !!timestamp 2020-13-45\n", "x: .nan\n", "x: .inf\n", "x: \"\\ud800\"\n",
    "x: \"\\0\"\n", "x: \x07\n", "x: 190:20:30\n", "<<: *nothing\n", "x: *nothing\n",
    "--- a\n--- b\n", "%YAML 9.9\n---\nx: 1\n", "x: 'unclosed\n", "\ufeffx: 1\n",
    "x:\n" + "".join(" " * i + "- \n" for i in range(0, 400, 2)), "x: " + "a" * 70000 + "\n",
]


@st.composite
def broken_text(draw, valid: str, snippets: list[str]) -> str:
    """`valid` with a few of its lines dropped, doubled, swapped, cut or replaced."""
    lines = valid.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "double", "swap", "cut", "insert", "indent",
                                    "value"]))
        if how == "drop":
            del lines[i]
        elif how == "double":
            lines.insert(i, lines[i])
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif how == "cut":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif how == "insert":
            lines.insert(i, draw(st.sampled_from(snippets) | st.text(max_size=20)))
        elif how == "indent":
            lines[i] = " " * draw(st.integers(1, 5)) + lines[i]
        elif ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {json.dumps(draw(json_values))}\n"
    return "".join(lines)


@st.composite
def retyped(draw, valid: str) -> str:
    """`valid` parsed, one value anywhere replaced by a value of another type, dumped."""
    data = yaml.safe_load(valid)
    paths: list[tuple] = []

    def walk(node, path):
        paths.append(path)
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for key, child in items:
            walk(child, (*path, key))

    walk(data, ())
    path = draw(st.sampled_from(paths[1:]))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(json_values)
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()),
                          default_flow_style=draw(st.sampled_from([False, True, None])))


def hostile(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(broken_text(valid, YAML_SNIPPETS), retyped(valid),
                     st.sampled_from(YAML_SNIPPETS), st.text(max_size=200))


def encoded(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.builds(lambda t, enc: t.encode(enc, "surrogatepass" if enc == "utf-8"
                                              else "replace"),
                     text, st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))


# ---- feeds -----------------------------------------------------------------------------

EVENT = {"sku": "TOM-BRANDY", "name": "Tomatoes", "price": "4.50", "currency": "EUR",
         "unit": "kg", "stock": 40, "status": "in_stock", "source_version": 3,
         "source_timestamp": "2026-05-01T10:00:00Z"}
FEED_JSON = json.dumps({"events": [EVENT, {"op": "remove", "sku": "APL-1"}]}, indent=1)
FEED_CSV = ("sku,name,price,currency,unit,stock,status\n"
            "TOM-BRANDY,Tomatoes,4.50,EUR,kg,40,in_stock\n"
            'APL-1,"Apples, red",2.10,eur,kg,0,sold_out\n')
JSON_SNIPPETS = ["[" * 5000, '"\\ud800"', "NaN", "Infinity", "-Infinity", "1e400",
                 "1" + "0" * 5000, '{"events": {}}', '{"x": 1}', "null", '"²"', "\x00",
                 '{"events": [' + "[" * 70 + "]" * 70 + "]}"]
CSV_SNIPPETS = ['"unclosed\n', "a,b,c,d,e,f,g,h,i,j\n", "\x00\n", "sku\n", ",,,\n",
                "x" * 200_000 + "\n", '"a""b",1\n', "\r\r\n", "TOM,\u00b2,\ud800,1\n"]


def check_feed(body: bytes, fmt: str) -> None:
    with time_limit():
        try:
            rows = feeds.parse(body, fmt)
        except feeds.FeedFormatError as exc:
            assert str(exc)
            sendable(str(exc))
            return
    for line, row in rows:
        assert isinstance(line, int)
        assert isinstance(row, feeds.FeedEvent | feeds.RowError), row
        if isinstance(row, feeds.RowError):
            sendable(json.dumps(row.as_dict(), ensure_ascii=False))


@fuzz_settings(quick=60, deep=5000)
@given(body=encoded(st.one_of(broken_text(FEED_JSON, JSON_SNIPPETS),
                              st.lists(json_values, max_size=4).map(json.dumps),
                              st.sampled_from(JSON_SNIPPETS), st.text(max_size=100)))
       | st.binary(max_size=200))
@example(body=b"[" * 5000 + b"]" * 5000)
@example(body=b'{"events": [{"sku": "A", "price": NaN}, {"sku": "B", "price": 1e400}]}')
def test_json_feeds(body: bytes):
    check_feed(body, "json")


@fuzz_settings(quick=60, deep=5000)
@given(body=encoded(st.one_of(broken_text(FEED_CSV, CSV_SNIPPETS), st.text(max_size=200)))
       | st.binary(max_size=200))
@example(body=b"sku,price\nA," + b"9" * 200_000 + b"\n")
@example(body=b"sku,price\nA,1\x00\n")
def test_csv_feeds(body: bytes):
    check_feed(body, "csv")


# ---- scenes and shows ------------------------------------------------------------------

MARKET = STALL_MARKET.format(m="alpha")
DISPLAY = STALL_DISPLAY + (
    '    - {id: card, kind: panel, title: "Apples", body: "Fresh", position: [0, 0.2, 0]}\n')
SHOW = """\
version: 1
show:
  id: opening
  title: Opening
  zone: hall
  cues:
    - number: "1"
      name: Hello
      duration: 2
      continue: auto-follow
      actions:
        - {kind: overlay, title: "Welcome", text: "The market opens."}
    - number: "2"
      name: Price
      actions:
        - {kind: node, display: stall, node: card, op: tween, scale: 1.2, duration: 1}
"""
FILES = {"market": ("scenes/alpha/market.yaml", MARKET),
         "display": ("scenes/alpha/displays/stall.yaml", DISPLAY),
         "show": ("scenes/alpha/shows/opening.yaml", SHOW)}


def load_with(which: str, data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, (path, text) in FILES.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data if name == which else text.encode())
        (root / "assets").mkdir()
        with time_limit():
            return load_content(root)


def test_the_base_content_is_valid():
    content = load_with("none", b"")
    assert content.problems == [] and "alpha" in content.markets
    assert "opening" in content.markets["alpha"].shows


def check_yaml_file(which: str, data: bytes) -> None:
    content = load_with(which, data)
    for problem in content.problems:
        assert isinstance(problem, Problem) and problem.message
        sendable(str(problem))
    assert content.problems or "alpha" in content.markets


@pytest.mark.parametrize("which", ["market", "display", "show"])
def test_hostile_scene_and_show_files(which: str):
    @fuzz_settings(quick=25, deep=2000)
    @given(data=encoded(hostile(FILES[which][1])) | st.binary(max_size=100))
    def run(data: bytes):
        check_yaml_file(which, data)

    run()


@pytest.mark.parametrize("snippet", YAML_SNIPPETS, ids=range(len(YAML_SNIPPETS)))
@pytest.mark.parametrize("which", ["display", "show"])
def test_each_hostile_yaml_construct_is_a_problem(which: str, snippet: str):
    """Regression: alias bombs, self-referring aliases, deep nesting, complex keys, huge
    integers, impossible dates and control characters each made the loader raise
    (RecursionError, TypeError, ValueError, ReaderError) or run for minutes."""
    check_yaml_file(which, FILES[which][1].encode() + snippet.encode("utf-8", "surrogatepass"))
    check_yaml_file(which, snippet.encode("utf-8", "surrogatepass"))


# ---- stories ---------------------------------------------------------------------------

STORY = (REPO / "stories" / "hens-in-the-orchard.md").read_text()
FACTS = {"greenhaven": MarketFacts(producers=frozenset({"kippenlust", "zonneveld"}),
                                   skus=frozenset({"EGG-HEN-6", "EGG-DUCK-4"}))}


def check_story(text: str) -> None:
    with time_limit():
        result = story_files.parse_file(text, "fuzzed.md", FACTS)
    if isinstance(result, list):
        assert result
        for problem in result:
            assert isinstance(problem, Problem) and problem.message
            sendable(str(problem))


def story_texts() -> st.SearchStrategy[str]:
    front, body = STORY.split("---\n", 2)[1:]
    return st.one_of(
        st.builds(lambda f, b: f"---\n{f}---\n{b}", hostile(front), st.just(body)),
        st.builds(lambda b: f"---\n{front}---\n{b}", st.text(max_size=300)),
        broken_text(STORY, [*YAML_SNIPPETS, "---\n", "# " * 500 + "\n", "> " * 500 + "x\n",
                            "[x](javascript:alert(1))\n", "<script>x</script>\n"]),
        st.text(max_size=200))


def test_the_base_story_parses():
    assert not isinstance(story_files.parse_file(STORY, "hens-in-the-orchard.md", None), list)


@fuzz_settings(quick=60, deep=5000)
@given(text=story_texts())
@example(text="---\n" + ALIAS_BOMB + "---\nbody\n")
@example(text="---\n? [a]\n: 1\n---\nbody\n")
def test_story_front_matter(text: str):
    check_story(text)


@pytest.fixture(scope="module")
def story_engine(tmp_path_factory):
    from holobazaar import db

    url = f"sqlite:///{tmp_path_factory.mktemp('stories') / 'fuzz.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()


def test_story_imports(story_engine):
    """`holobazaar stories import` (and serve's start-up import) over hostile files: each
    is imported or reported as a Problem; nothing raises."""
    @fuzz_settings(quick=20, deep=2000)
    @given(data=encoded(story_texts()) | st.binary(max_size=100))
    def run(data: bytes):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "fuzzed.md").write_bytes(data)
            with time_limit():
                report = story_files.import_directory(story_engine, Path(tmp), "fuzz",
                                                      max_bytes=256 * 1024, markets=FACTS)
        for problem in report.problems:
            sendable(str(problem))
        assert len(report.problems) + len(report.imported) + len(report.unchanged) >= 1

    run()
