"""Which markers a market needs and their URLs, and writing them as PDF or PNG.

A marker URL carries only the market and display identifiers: it is printed and taped to
a stall for months, so it must never carry a token or anything that expires."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from holobazaar.config import check_base_url
from holobazaar.markers.layout import DPI, Card, render_poster, render_sheets
from holobazaar.scenes.compositor import compose_display
from holobazaar.scenes.loader import MarketContent

MarkerFormat = Literal["pdf", "png"]


def display_url(base_url: str, market: str, display: str) -> str:
    return f"{check_base_url(base_url)}/d/{market}/{display}"


def market_url(base_url: str, market: str) -> str:
    return f"{check_base_url(base_url)}/m/{market}"


@dataclass(frozen=True)
class MarkerSet:
    market_id: str
    market_name: str
    market_url: str
    cards: list[Card]


def content_titles(market: MarketContent, language: str | None = None) -> dict[str, str]:
    """Display titles rendered from the content files and their seed inventory, for the
    CLI (no running server), in `language` (None: the market's default). Template output
    is plain text, as cards need."""
    items = market.seed_items()
    return {
        display.id: compose_display(market.market, display, items, {},
                                    language=language)[0]["display"]["title"]
        for display in market.displays.values()
    }


def content_titles_by_language(market: MarketContent) -> dict[str, dict[str, str]]:
    """`content_titles` in each of the market's other languages."""
    return {lang: content_titles(market, lang) for lang in market.market.market.languages[1:]}


def marker_set(market: MarketContent, base_url: str, titles: Mapping[str, str],
               translated: Mapping[str, Mapping[str, str]] | None = None) -> MarkerSet:
    """One card per display, ordered by zone then title so neighbours print together.
    `translated` (language -> display -> title): the stall's name in the market's other
    languages, printed under it (each different name once)."""
    name = market.market.market.name
    displays = sorted(market.displays.values(),
                      key=lambda d: (d.zone, (titles.get(d.id) or d.title).lower(), d.id))

    def others(display_id: str, title: str) -> tuple[str, ...]:
        found: list[str] = []
        for by_display in (translated or {}).values():
            other = by_display.get(display_id)
            if other and other != title and other not in found:
                found.append(other)
        return tuple(found)

    cards = [Card(title, display_url(base_url, market.id, d.id), name, others(d.id, title))
             for d in displays for title in [titles.get(d.id) or d.title]]
    return MarkerSet(market.id, name, market_url(base_url, market.id), cards)


def render_pages(markers: MarkerSet) -> list[Image.Image]:
    """The entrance poster first, then the A4 sheets of cards."""
    poster = render_poster(markers.market_name, markers.market_url, len(markers.cards))
    return [poster, *render_sheets(markers.cards)]


def pdf_bytes(markers: MarkerSet) -> bytes:
    pages = render_pages(markers)
    out = io.BytesIO()
    # resolution=DPI makes each page exactly A4 in the PDF.
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=DPI,
                  title=f"{markers.market_name}: markers", author="Holobazaar")
    return out.getvalue()


def png_files(markers: MarkerSet) -> dict[str, bytes]:
    pages = render_pages(markers)
    names = [f"markers-{markers.market_id}-poster.png"] + [
        f"markers-{markers.market_id}-sheet-{i}.png" for i in range(1, len(pages))]
    files = {}
    for name, page in zip(names, pages, strict=True):
        out = io.BytesIO()
        page.save(out, format="PNG", dpi=(DPI, DPI), optimize=True)
        files[name] = out.getvalue()
    return files


def write_markers(markers: MarkerSet, out_dir: Path, fmt: MarkerFormat) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "pdf":
        files = {f"markers-{markers.market_id}.pdf": pdf_bytes(markers)}
    else:
        files = png_files(markers)
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written
