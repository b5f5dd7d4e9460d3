"""Text as pictures: a display's labels, panels and farm card drawn with Pillow, to be put
on flat quads in the USDZ and GLB files (Quick Look and Scene Viewer draw no text)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from holobazaar.markers.layout import font

# Pixels per metre of a label's texture: a 16 mm price line is ~45 px high, sharp at arm's
# length on a phone; no texture edge goes over MAX_EDGE (a long panel gets coarser).
PX_PER_M = 2800
MAX_EDGE = 1024
LABEL_BACKING = (18, 24, 18, 170)
# Labels are text on a flat colour: 64 palette colours keep the anti-aliasing and make a
# PNG about 4x smaller and faster to encode than full RGBA (alpha kept in the palette).
PALETTE = 64


def palette(image: Image.Image) -> Image.Image:
    return image.quantize(PALETTE, method=Image.Quantize.FASTOCTREE)


def has_alpha(image: Image.Image) -> bool:
    if image.mode == "P":
        return (image.palette is not None and image.palette.mode == "RGBA") \
            or "transparency" in image.info
    return image.mode in ("RGBA", "LA")


def _rgb(colour: str, fallback: tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(colour, str) and len(colour) == 7 and colour.startswith("#"):
        try:
            return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
        except ValueError:
            pass
    return fallback


def wrap(text: str, face: ImageFont.FreeTypeFont, width_px: float) -> list[str]:
    """Lines of `text` no wider than `width_px` (a word longer than that is cut)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= width_px or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
            while face.getlength(line) > width_px and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and face.getlength(line[:cut]) > width_px:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def text_label(text: str, size_m: float, colour: str, max_width_m: float | None,
               align: str = "center") -> tuple[Image.Image, float, float]:
    """A text node as a picture on a dark translucent backing (readable on any counter):
    (image, width in metres, height in metres). Like the client's text, it wraps only at
    `max_width_m` (backing included), else it stays one line per line of `text`."""
    scale: float = PX_PER_M
    words = " ".join(text.split()) or " "
    size_px = max(8, round(size_m * scale))
    if size_px > 160:  # very large text: fewer pixels per metre, same look
        scale, size_px = 160 / size_m, 160
    pad = max(2, size_px // 5)
    natural = font(size_px).getlength(words) + 2 * pad
    if not max_width_m and natural > MAX_EDGE:  # one long line: coarser, still one line
        scale *= 0.98 * MAX_EDGE / natural  # a little room: glyph widths round per size
        size_px = max(8, int(size_m * scale))
        pad = max(2, size_px // 5)
    face = font(size_px)
    limit = min(max_width_m * scale if max_width_m else MAX_EDGE, MAX_EDGE) - 2 * pad
    lines = wrap(words, face, limit)
    line_h = round(size_px * 1.2)
    width = min(MAX_EDGE, round(max(face.getlength(li) for li in lines)) + 2 * pad)
    height = min(MAX_EDGE, line_h * len(lines) + 2 * pad)
    image = Image.new("RGBA", (width, height), LABEL_BACKING)
    draw = ImageDraw.Draw(image)
    ink = _rgb(colour, (255, 255, 255))
    for i, line in enumerate(lines):
        length = face.getlength(line)
        x = {"left": pad, "right": width - pad - length}.get(align, (width - length) / 2)
        draw.text((x, pad + i * line_h), line, font=face, fill=(*ink, 255))
    return palette(image), width / scale, height / scale


def panel(title: str, body: str, width_m: float, height_m: float, colour: str,
          opacity: float) -> Image.Image:
    """A panel node (title and body on a coloured card) at its authored size; a body too
    long for the card ends with an ellipsis, as the page's "more" does."""
    scale = min(PX_PER_M / 2, MAX_EDGE / max(width_m, height_m))
    w, h = max(16, round(width_m * scale)), max(16, round(height_m * scale))
    background = (*_rgb(colour, (30, 42, 30)), round(255 * max(0.0, min(1.0, opacity))))
    image = Image.new("RGBA", (w, h), background)
    draw = ImageDraw.Draw(image)
    pad = round(min(w, h) * 0.08)
    title_px = max(10, round(max(0.012, min(0.04, height_m * 0.12)) * scale))
    y = pad
    title_face = font(title_px, bold=True)
    for line in wrap(title, title_face, w - 2 * pad):
        draw.text((pad, y), line, font=title_face, fill=(255, 255, 255, 255))
        y += round(title_px * 1.3)
    y += round(title_px * 0.3)
    # A long body (a price board listing every item) gets smaller type before it is cut:
    # down to 60% of the client's body size, then an ellipsis, as the page's "more" does.
    for factor in (1.0, 0.9, 0.8, 0.7, 0.6):
        body_face = font(max(8, round(title_px * 0.75 * factor)))
        step = round(body_face.size * 1.3)
        lines = wrap(body.strip(), body_face, w - 2 * pad)
        room = max(0, (h - pad - y) // step)
        if len(lines) <= room:
            break
    if len(lines) > room:
        lines = lines[:room]
        if lines:
            lines[-1] = lines[-1].rstrip(" .") + " …"
    for line in lines:
        draw.text((pad, y), line, font=body_face, fill=(236, 236, 228, 255))
        y += step
    return palette(image)
