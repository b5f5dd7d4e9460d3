"""Languages in the browser (issue 23), one page over the demo market: a Dutch browser
(Accept-Language nl) gets the Dutch page, prices the Dutch way (€ 6,50) and the Dutch
display text from the stream, live (a price change arrives as "€ 5,90" in the list and in
the 3D scene); the picker switches to Arabic without a reload (right-to-left, the Arabic
channel's text, its messages); the Arabic page at 390x844 and 1440x900 passes the
display-layout check (tests/browser/layout_check.py: no overlapping text), its
language picker does not overlap the page's header, and the choice is remembered.
Screenshots in test-artifacts/languages/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_content import ARTIFACTS
from conftest import PageProbe
from layout_check import SETTLED, layout_problems
from support.content import copy_content
from support.live import LiveServer, start_server

MARKET, DISPLAY = "greenhaven", "zonneveld-greens"
PATH = f"/d/{MARKET}/{DISPLAY}"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}
# The scene's drawn texts (troika), as the visitor sees them (Arabic letters are drawn in
# their presentation forms, web-client/src/arabic.js: NFKC gives the letters back).
DRAWN = """() => {
  const out = [];
  window.__holo.scene.traverse((o) => {
    if (typeof o.text === 'string') out.push(o.text.normalize('NFKC'));
  });
  return out;
}"""


def plain(text: str) -> str:
    return text.replace("\xa0", " ").replace("\u200f", "").replace("\u202f", " ")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = Path(tmp_path_factory.mktemp("languages"))
    live = start_server(tmp, content_dir=copy_content(tmp / "content"), watch=False)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = ARTIFACTS / "languages"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def ready(probe: PageProbe) -> None:
    probe.wait("window.__holo && window.__holo.ready && window.__holo.frames >= 2", 45_000)


def test_dutch_page_live_switch_to_arabic_and_its_layout(browser, server, artifacts) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="nl-NL",
                                  has_touch=True, is_mobile=True)
    try:
        probe = PageProbe(context.new_page())
        page = probe.page
        page.goto(server.url + PATH)
        assert page.evaluate("document.documentElement.lang") == "nl"
        assert page.locator("#products-heading").inner_text() == "Producten"
        tomato = page.locator('#products li[data-sku="TOM-BRANDY"] .price')
        assert plain(tomato.inner_text()) == "€ 6,50"
        ready(probe)
        assert plain(tomato.inner_text()) == "€ 6,50"  # the client formats it the same way
        assert page.locator("#display-title").inner_text() == "Tuinderij Zonneveld: groenten"
        assert any(t.startswith("Vanochtend geplukt") for t in page.evaluate(DRAWN))
        # A price change reaches the Dutch page through its Dutch channel.
        with server.client() as http:
            changed = http.patch(f"/api/v1/markets/{MARKET}/items/TOM-BRANDY",
                                 json={"price": "5.90"}, headers=server.write_headers)
            assert changed.status_code == 200, changed.text
        page.wait_for_function("""() => document.querySelector(
            '#products li[data-sku="TOM-BRANDY"] .price').textContent.includes('5,90')""")
        page.wait_for_function(f"() => ({DRAWN})().some((t) => t.includes('5,90'))")
        drawn = [plain(t) for t in page.evaluate(DRAWN) if "5,90" in t]
        assert any("€ 5,90" in t for t in drawn), drawn
        page.screenshot(path=str(artifacts / "dutch-390x844.png"))

        # The picker: Arabic, live (the page is not loaded again).
        page.evaluate("window.__notReloaded = true")
        page.select_option("#lang-select", "ar")
        page.wait_for_function("window.__holo.language === 'ar'")
        assert page.evaluate("window.__notReloaded") is True
        assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") \
            == ["ar", "rtl"]
        assert page.locator("#products-heading").inner_text() == "المنتجات"
        # The view's settings follow the switch too (they stayed Dutch in an Arabic page).
        assert page.locator("#view-settings").text_content().split() == [
            "تقليل", "الحركة", "نص", "أكبر"]
        page.wait_for_function("""() => document.getElementById('display-title')
            .textContent.endsWith('خضار')""")
        page.wait_for_function(
            f"() => ({DRAWN})().some((t) => t.startsWith('قُطف'.normalize('NFKC')))")
        assert "متوفر" in page.locator('#products li[data-sku="TOM-BRANDY"]').inner_text()
        # A price label with an untranslated English name and an Arabic-formatted price:
        # laid out right to left, its amount isolated (FSI ... PDI) so the amount keeps its
        # order ("\u200f5.90 €" reads as the list's "€ 5.90") whatever surrounds it.
        labels = page.evaluate("""() => {
          const out = [];
          window.__holo.scene.traverse((o) => {
            if (typeof o.text === 'string' && o.text.startsWith('Brandywine heirloom')) {
              out.push([o.text, o.direction]);
            }
          });
          return out;
        }""")
        assert labels and all(direction == "rtl"
                              and re.search("\u2068\u200f5\\.90\xa0€\u2069 / kg", text)
                              for text, direction in labels), labels
        assert probe.errors == [], probe.errors

        # The Arabic page passes the display-layout check at both sizes (the same page,
        # resized), and the language picker stays clear of the page's header.
        for name, size in (("390x844", PHONE), ("1440x900", LAPTOP)):
            before = page.evaluate(SETTLED)
            assert before is not None, "the layout never settled"
            if size is not PHONE:  # resized: wait for the layout of the new size
                page.set_viewport_size(size)
                page.wait_for_function("async (g) => (await window.__holo.layoutSettled())"
                                       ".generation > g", arg=before["generation"])
                assert page.evaluate(SETTLED) is not None, "the layout never settled"
            measured = page.evaluate("window.__holo.layoutProbe(4)")
            assert measured["texts"], "nothing drawn"
            problems = layout_problems(measured, 12.0 if size is PHONE else None)
            assert problems == [], "\n".join(problems)
            picker = page.locator("#lang-picker").bounding_box()
            header = page.locator(".page-header").bounding_box()
            assert picker and header and picker["y"] + picker["height"] <= header["y"] + 1
            assert page.evaluate("getComputedStyle(document.getElementById('products'))"
                                 ".direction") == "rtl"
            page.screenshot(path=str(artifacts / f"arabic-{name}.png"), full_page=True)
        assert probe.errors == [], probe.errors
        # The choice is remembered: the next page load is Arabic (the cookie).
        again = context.request.get(server.url + PATH).text()
        assert '<html lang="ar" dir="rtl">' in again
    finally:
        context.close()
