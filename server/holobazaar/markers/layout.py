"""Drawing the cards, sheets and poster with Pillow at print resolution (300 dpi, A4).

Everything is drawn in pixels computed from millimetres so a printed card has the size
the layout says, whatever printer driver scales it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

DPI = 300
A4_MM = (210.0, 297.0)
PAGE_MARGIN_MM = 10.0
COLUMNS, ROWS = 2, 4
CARD_PADDING_MM = 4.0
CUT_MARK_MM = 5.0
INK = (20, 28, 20)
MUTED = (95, 105, 95)
ACCENT = (45, 106, 45)

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def mm(value: float) -> int:
    return round(value * DPI / 25.4)


A4_PX = (mm(A4_MM[0]), mm(A4_MM[1]))


@dataclass(frozen=True)
class Card:
    title: str  # the stall's name as visitors know it (plain text, not HTML)
    url: str
    market_name: str
    # The name in the market's other languages (Arabic and Hebrew are shaped and laid out
    # right to left by Pillow's Raqm layout).
    translations: tuple[str, ...] = ()


@lru_cache(maxsize=32)
def font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(_FONT_DIR / name), size_px)
    except OSError:
        # No DejaVu on this machine: Pillow's bundled font still scales (Pillow >= 10.1).
        face = ImageFont.load_default(size_px)
        assert isinstance(face, ImageFont.FreeTypeFont)  # Pillow has FreeType (truetype)
        return face


def qr_image(url: str, size_px: int) -> Image.Image:
    """A QR code exactly fitting `size_px` (modules are whole pixels, so it stays sharp)
    with a 2-module quiet zone; the caller leaves white space around it as well."""
    qr = segno.make(url, error="m", micro=False)
    border = 2
    modules = qr.symbol_size(scale=1, border=border)[0]
    scale = max(1, size_px // modules)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=border)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    canvas = Image.new("L", (size_px, size_px), 255)
    offset = (size_px - image.width) // 2
    canvas.paste(image, (offset, offset))
    return canvas


def wrap(draw: ImageDraw.ImageDraw, text: str, face, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap; words longer than a line (URLs) are broken by character; the last
    line is cut with an ellipsis when the text does not fit."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=face) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:
            if draw.textlength(current + char, font=face) > width and current:
                lines.append(current)
                current = ""
            current += char
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and draw.textlength(last + "…", font=face) > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return lines


def fitted(draw: ImageDraw.ImageDraw, text: str, sizes_px: list[int], width: int,
           max_lines: int, bold: bool = False):
    """The largest font size at which `text` fits in `max_lines` without breaking a word
    (stall names are read from a metre away); the smallest size otherwise."""
    for size in sizes_px:
        face = font(size, bold)
        words_fit = all(draw.textlength(w, font=face) <= width for w in text.split())
        lines = wrap(draw, text, face, width, max_lines + 1)
        if words_fit and len(lines) <= max_lines:
            return face, lines
    face = font(sizes_px[-1], bold)
    return face, wrap(draw, text, face, width, max_lines)


def _draw_lines(draw: ImageDraw.ImageDraw, xy: tuple[int, int], lines: list[str], face,
                fill: tuple[int, int, int], spacing: float = 1.2) -> int:
    x, y = xy
    step = round(face.size * spacing) if hasattr(face, "size") else 20
    for line in lines:
        draw.text((x, y), line, font=face, fill=fill)
        y += step
    return y


def render_card(card: Card, size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    pad = mm(CARD_PADDING_MM)
    # About 45 mm: scans from arm's length, and leaves half the card for the stall's name.
    qr_side = min(height - 2 * pad, round(width * 0.46))
    image.paste(qr_image(card.url, qr_side), (pad, (height - qr_side) // 2))
    x = pad + qr_side + pad // 2
    text_width = width - x - pad
    face, lines = fitted(draw, card.market_name.upper(), [mm(2.6), mm(2.2)], text_width, 2)
    y = _draw_lines(draw, (x, pad), lines, face, MUTED)
    y += mm(2)
    url_face = font(mm(2.1))
    url_lines = wrap(draw, card.url, url_face, text_width, 3)
    url_top = height - pad - len(url_lines) * round(url_face.size * 1.2)
    face, lines = fitted(draw, card.title, [mm(s) for s in (5.2, 4.6, 4.0, 3.4)], text_width,
                         3, bold=True)
    y = _draw_lines(draw, (x, y), lines, face, INK, 1.15)
    # The name in the market's other languages, as many as fit above the URL.
    for other in card.translations:
        face, lines = fitted(draw, other, [mm(s) for s in (3.6, 3.2, 2.8)], text_width, 2,
                             bold=True)
        if y + mm(0.8) + len(lines) * round(face.size * 1.15) > url_top - mm(1):
            break
        y = _draw_lines(draw, (x, y + mm(0.8)), lines, face, MUTED, 1.15)
    y += mm(2)
    scan_face = font(mm(3.2))
    scan = wrap(draw, "Scan to see the story of this stall", scan_face, text_width, 3)
    if y + len(scan) * round(scan_face.size * 1.2) <= url_top - mm(1):
        _draw_lines(draw, (x, y), scan, scan_face, ACCENT)
    _draw_lines(draw, (x, url_top), url_lines, url_face, MUTED)
    return image


def _cut_marks(draw: ImageDraw.ImageDraw, xs: list[int], ys: list[int]) -> None:
    """Short lines in the page margin at every card edge, so the sheet can be cut with a
    ruler without drawing lines across the cards themselves."""
    length, gap, line = mm(CUT_MARK_MM), mm(1), max(1, mm(0.2))
    top, bottom, left, right = ys[0], ys[-1], xs[0], xs[-1]
    for x in xs:
        draw.line([(x, top - gap - length), (x, top - gap)], fill=INK, width=line)
        draw.line([(x, bottom + gap), (x, bottom + gap + length)], fill=INK, width=line)
    for y in ys:
        draw.line([(left - gap - length, y), (left - gap, y)], fill=INK, width=line)
        draw.line([(right + gap, y), (right + gap + length, y)], fill=INK, width=line)


def render_sheets(cards: list[Card]) -> list[Image.Image]:
    """A4 pages of COLUMNS x ROWS cards."""
    margin = mm(PAGE_MARGIN_MM)
    cell_w = (A4_PX[0] - 2 * margin) // COLUMNS
    cell_h = (A4_PX[1] - 2 * margin) // ROWS
    xs = [margin + i * cell_w for i in range(COLUMNS + 1)]
    ys = [margin + j * cell_h for j in range(ROWS + 1)]
    per_page = COLUMNS * ROWS
    pages = []
    for start in range(0, len(cards), per_page):
        page = Image.new("RGB", A4_PX, "white")
        for index, card in enumerate(cards[start:start + per_page]):
            column, row = index % COLUMNS, index // COLUMNS
            page.paste(render_card(card, (cell_w, cell_h)), (xs[column], ys[row]))
        _cut_marks(ImageDraw.Draw(page), xs, ys)
        pages.append(page)
    return pages


def render_poster(market_name: str, url: str, stalls: int) -> Image.Image:
    """The entrance poster: the market page, big enough to scan from a few metres."""
    page = Image.new("RGB", A4_PX, "white")
    draw = ImageDraw.Draw(page)
    margin = mm(18)
    width = A4_PX[0] - 2 * margin
    y = _draw_lines(draw, (margin, mm(22)), wrap(draw, market_name, font(mm(13), bold=True),
                                                  width, 2), font(mm(13), bold=True), INK, 1.1)
    y += mm(4)
    y = _draw_lines(draw, (margin, y), wrap(
        draw, "Scan to enter the market: the story of every stall, recipes and today's "
        "prices, in augmented reality.", font(mm(6)), width, 4), font(mm(6)), ACCENT)
    side = mm(150)
    top = max(y + mm(8), mm(70))
    page.paste(qr_image(url, side), ((A4_PX[0] - side) // 2, top))
    y = top + side + mm(6)
    url_face = font(mm(5))
    for line in wrap(draw, url, url_face, width, 2):
        draw.text((A4_PX[0] // 2, y), line, font=url_face, fill=MUTED, anchor="mt")
        y += round(url_face.size * 1.2)
    footer = f"{stalls} stalls with a marker · look for the square code at each stall"
    draw.text((A4_PX[0] // 2, A4_PX[1] - mm(18)), footer, font=font(mm(4)), fill=MUTED,
              anchor="mb")
    return page
