"""The layout check of issue 19, shared by its two modules (test_display_layout.py at the
phone size, test_display_layout_laptop.py at the laptop size: two modules so that the two
test processes of `make test` run one each): every demo display measured from the live
three.js scene (window.__holo.layoutProbe): no two text blocks overlap, no text runs past
its panel or out of the view, no price label nor an item's other line (its stock line,
its name) is hidden by a model (raycast samples), and on the phone no text is under 12 CSS
px at the initial view. Screenshots of every display at
both sizes are kept as test artifacts.

The same check runs on hostile content (tests/browser/layout_market/: a 200-character title
and body, forty bound items, CJK, Arabic and emoji, no items, no models, a model that fails
to load), and no request of any page leaves the loopback address (fonts for other scripts
come from our build). One server per module, one page for the size (a display is a
navigation on it: the browser's cache keeps the client and the models)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_content import ARTIFACTS
from conftest import PageProbe
from support.content import REPO, copy_content
from support.live import LiveServer, start_server

DEMO = "greenhaven"
DISPLAYS = sorted(p.stem for p in (REPO / "scenes" / DEMO / "displays").glob("*.yaml"))
HOSTILE_DIR = Path(__file__).parent / "layout_market"
HOSTILE = "hostile"
HOSTILE_DISPLAYS = sorted(p.stem for p in
                          (HOSTILE_DIR / "scenes" / HOSTILE / "displays").glob("*.yaml"))
ALL = [(DEMO, d) for d in DISPLAYS] + [(HOSTILE, d) for d in HOSTILE_DISPLAYS]
IDS = [f"{m}-{d}" for m, d in ALL]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
SIZES = {"phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True,
                   "is_mobile": True},
         "laptop": {"viewport": {"width": 1440, "height": 900}}}
MIN_PHONE_PX = 12.0  # one floor for every display (issue 19)
SLACK = 1.0  # CSS px: rounding of projected rectangles
SETTLED = """async () => {
  const h = window.__holo;
  // Models load (or fail), then the layout runs again: wait until nothing is pending.
  for (let i = 0; i < 200; i += 1) {
    const pending = [...document.querySelectorAll('#progress')].some((p) => !p.hidden);
    const report = await h.layoutSettled();
    if (!pending && report.generation > 0) {
      await new Promise((r) => setTimeout(r, 60));
      if (!pending && (await h.layoutSettled()).generation === report.generation) return report;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}"""

# The Arabic texts drawn, and the same letters drawn apart (so each in its isolated form):
# how many different glyphs troika laid out for each (an atlas index is one glyph of one
# font). Joined, letters take more shapes (initial, medial, final) than apart.
SHAPES = """async () => {
  const arabic = /[\\u0600-\\u06ff\\ufe70-\\ufeff]/;
  const drawn = [];
  window.__holo.scene.traverse((o) => {
    if (typeof o.text === 'string' && o.textRenderInfo && arabic.test(o.text)) drawn.push(o);
  });
  const apart = [];
  for (const o of drawn) {
    const t = new o.constructor();
    t.font = o.font;
    t.text = [...o.text.normalize('NFKC')].join(' ');
    await new Promise((done) => t.sync(done));
    apart.push(t);
  }
  const glyphs = (t) => [...t.textRenderInfo.glyphAtlasIndices];
  const count = (texts) => new Set(texts.flatMap(glyphs)).size;
  const out = [count(drawn), count(apart)];
  apart.forEach((t) => t.dispose());
  return out;
}"""


class SizedPage:
    """One browser context and one page for a size, reused for every display (the context's
    HTTP cache keeps the client, fonts and models; a display is a navigation); records every
    request that is not to the loopback address."""

    def __init__(self, browser, size: str) -> None:
        self.context = browser.new_context(device_scale_factor=1, **SIZES[size])
        self.outside: list[str] = []
        self.requests: list[str] = []
        self.context.on("request", self._request)
        self.probe = PageProbe(self.context.new_page())

    def open(self) -> PageProbe:
        """The page for the next display, with nothing recorded yet."""
        self.probe.errors.clear()
        self.outside.clear()
        self.requests.clear()
        return self.probe

    def leave(self) -> None:
        """Off the display: a page left on one draws frames (software GL) for nothing."""
        self.probe.page.goto("about:blank")

    def _request(self, request) -> None:
        self.requests.append(request.url)
        host = urlsplit(request.url).hostname or ""
        if urlsplit(request.url).scheme in ("http", "https", "ws", "wss") and host not in LOOPBACK:
            self.outside.append(request.url)


def layout_fixtures(size: str) -> tuple[Callable, ...]:
    """The module fixtures of the check at one size: `demo_server` (the demo content with
    the hostile market beside it), `sized` (the size's SizedPage) and `artifacts`
    (test-artifacts/layout/, git-ignored: kept after the run, for people to look at)."""

    @pytest.fixture(scope="module")
    def demo_server(tmp_path_factory) -> Iterator[LiveServer]:
        tmp = Path(tmp_path_factory.mktemp("demo"))
        content = copy_content(tmp / "content")
        shutil.copytree(HOSTILE_DIR / "scenes", content / "scenes", dirs_exist_ok=True)
        shutil.copytree(HOSTILE_DIR / "assets", content / "assets", dirs_exist_ok=True)
        live = start_server(tmp, content_dir=content, watch=False)
        yield live
        live.stop()

    @pytest.fixture(scope="module")
    def sized(browser) -> Iterator[SizedPage]:
        page = SizedPage(browser, size)
        yield page
        page.context.close()

    @pytest.fixture(scope="module")
    def artifacts() -> Iterator[Path]:
        folder = ARTIFACTS / "layout"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"*-{size}.png"):  # the other size's module may be running
            old.unlink()
        print(f"\nlayout screenshots: {folder}")
        yield folder
        sheet = contact_sheet(folder)
        if sheet:
            print(f"\nlayout contact sheet: {sheet} (docs/layout-contact-sheet.png is a copy)")

    return demo_server, sized, artifacts


def contact_sheet(folder: Path, tile_width: int = 260) -> Path | None:
    """All screenshots in one small PNG: a row per display, phone then laptop."""
    from PIL import Image

    rows = []
    for market, display in ALL:
        shots = [folder / f"{market}-{display}-{size}.png" for size in SIZES]
        if all(p.is_file() for p in shots):
            rows.append([Image.open(p).convert("RGB") for p in shots])
    if not rows:
        return None
    widths = [tile_width // 2, tile_width * 2 - tile_width // 2]  # phone narrow, laptop wide
    tiles = [[im.resize((w, round(im.height * w / im.width)))
              for im, w in zip(row, widths, strict=True)] for row in rows]
    height = max(t.height for row in tiles for t in row)
    sheet = Image.new("RGB", (sum(widths) + 4, (height + 2) * len(tiles)), "#111611")
    for r, row in enumerate(tiles):
        x = 0
        for tile in row:
            sheet.paste(tile, (x, r * (height + 2)))
            x += tile.width + 4
    out = folder / "contact-sheet.png"
    # Both modules may write it at once: each writes its own file, then renames it.
    part = folder / f"contact-sheet.{os.getpid()}.png"
    sheet.quantize(colors=128).save(part, optimize=True)
    part.replace(out)
    return out


Quad = list[list[float]]


def _axes(quad: Quad) -> list[tuple[float, float]]:
    return [(quad[i][1] - quad[(i + 1) % 4][1], quad[(i + 1) % 4][0] - quad[i][0])
            for i in range(4)]


def overlaps(a: Quad, b: Quad, slack: float = SLACK) -> bool:
    """Two convex screen quads overlap by more than `slack` px (separating axis test): a
    turned panel's text is no rectangle on screen."""
    for ax, ay in _axes(a) + _axes(b):
        norm = (ax * ax + ay * ay) ** 0.5
        if norm < 1e-9:
            continue
        pa = [(x * ax + y * ay) / norm for x, y in a]
        pb = [(x * ax + y * ay) / norm for x, y in b]
        if min(max(pa), max(pb)) - max(min(pa), min(pb)) <= slack:
            return False
    return True


def inside(inner: Quad, outer: Quad, slack: float = SLACK) -> bool:
    """Every corner of `inner` lies in the convex quad `outer` (or within `slack` px)."""
    def distance(p: list[float], q: list[float], r: list[float]) -> float:
        cross = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return cross / max(1e-9, ((q[0] - p[0]) ** 2 + (q[1] - p[1]) ** 2) ** 0.5)
    # Which side is in: the side the opposite corner is on.
    sign = 1 if distance(outer[0], outer[1], outer[2]) > 0 else -1
    return all(sign * distance(outer[i], outer[(i + 1) % 4], p) >= -slack
               for p in inner for i in range(4))


def box_quad(rect: list[float]) -> Quad:
    return [[rect[0], rect[1]], [rect[2], rect[1]], [rect[2], rect[3]], [rect[0], rect[3]]]


def layout_problems(probe: dict, min_px: float | None) -> list[str]:
    """Everything that reads badly in one measured view (empty when the layout is good)."""
    w, h = probe["view"]
    texts, panels = probe["texts"], {p["id"]: p for p in probe["panels"]}
    problems = []
    for i, a in enumerate(texts):
        name = f"{a['id']}/{a['part']} {a['text']!r}"
        for b in texts[i + 1:]:
            if overlaps(a["quad"], b["quad"]):
                problems.append(f"overlap: {name} and {b['id']}/{b['part']} {b['text']!r}")
        panel = panels.get(a["panel"])
        if panel and not inside(a["quad"], panel["quad"]):
            problems.append(f"past its panel: {name} {a['rect']} vs {panel['rect']}")
        if not inside(a["quad"], box_quad([0, 0, w, h])):
            problems.append(f"outside the view: {name} {a['rect']}")
        if min_px is not None and a["px"] < min_px:
            problems.append(f"{a['px']} px: {name}")
        if a["occluded"] > 0:
            what = "price" if a["part"] == "price" else "item's line (stock, name)"
            problems.append(f"{what} hidden by a model ({a['occluded']:.0%}): {name}")
    return problems


def render(sized: SizedPage, server: LiveServer, path: str, shot: Path | None):
    probe = sized.open()
    for _ in range(10):
        probe.page.goto(server.url + path)
        # No client at all: the page was rendered while web-client/dist was being rebuilt
        # (no manifest, so no script tag; on a shared work tree): load it again.
        if probe.page.evaluate("Boolean(window.__holo)"):
            break
        probe.page.wait_for_timeout(3000)
    try:
        probe.wait("window.__holo && window.__holo.ready && window.__holo.frames >= 2", 45_000)
    except Exception as exc:
        state = probe.page.evaluate("""JSON.stringify({phase: window.__holo?.phase,
          frames: window.__holo?.frames, layout: window.__holo?.layout,
          warnings: window.__holo?.warnings})""")
        raise AssertionError(f"{path} never got ready: {state} {probe.errors}") from exc
    report = probe.page.evaluate(SETTLED)
    assert report is not None, "the layout never settled"
    result = probe.page.evaluate("window.__holo.layoutProbe(4)")
    if shot is not None:
        probe.page.locator(".stage").screenshot(path=str(shot))
    assert probe.errors == [], probe.errors
    assert sized.outside == [], f"requests left the machine: {sized.outside}"
    return report, result


def check_display(sized: SizedPage, size: str, server: LiveServer, artifacts: Path, market: str,
                  display: str) -> None:
    """The test of one display at one size (the page is left on a blank document)."""
    try:
        _check_display(sized, size, server, artifacts, market, display)
    finally:
        sized.leave()


def _check_display(sized: SizedPage, size: str, server: LiveServer, artifacts: Path,
                   market: str, display: str) -> None:
    report, probe = render(sized, server, f"/d/{market}/{display}",
                           artifacts / f"{market}-{display}-{size}.png")
    assert probe["texts"], "nothing drawn"
    problems = layout_problems(probe, MIN_PHONE_PX if size == "phone" else None)
    min_px = min(t["px"] for t in probe["texts"])
    print(f"{market}/{display} {size}: min {min_px:.1f} px, {len(probe['texts'])} texts, "
          f"layout {report}")
    assert problems == [], "\n".join(problems)
    if display == "scripts":
        # CJK, Arabic and emoji come from fallback fonts in our build (troika would fetch
        # them from a CDN; render() fails on any request off the machine).
        fonts = [u for u in sized.requests if "/client/vendor/unicode-fonts-" in u]
        for font in ("noto-sans-arabic-arabic/", "noto-sans-sc-", "noto-emoji-"):
            assert any(f"/font-files/{font}" in u for u in fonts), (font, fonts)
        # Arabic letters join (troika drew every letter isolated: see web-client/src/arabic.js).
        joined, apart = sized.probe.page.evaluate(SHAPES)
        # (the fixture: 66 glyphs joined, 41 when troika drew them unjoined, 40 apart)
        assert joined > 1.25 * apart, f"Arabic not joined: {joined} glyphs, {apart} apart"
        # U+1F44D comes from Noto Emoji, not a font that declares it without a glyph.
        assert any("/font-files/noto-emoji-9/" in u for u in fonts), fonts


