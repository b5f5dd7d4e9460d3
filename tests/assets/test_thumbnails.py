"""Thumbnails of content assets for the studio overview (assets/thumbnails.py): drawn from
the file itself, once per content hash."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from holobazaar.assets.thumbnails import content_thumbnail

from support.content import REPO


def test_a_model_is_drawn_in_its_colours_and_cached(tmp_path: Path):
    glb = REPO / "assets" / "build" / "tomato.glb"
    made = content_thumbnail(glb, "abc", tmp_path)
    with Image.open(made) as img:
        assert img.size == (256, 256)
        rgba = img.convert("RGBA").tobytes()  # (getdata is deprecated in Pillow 12)
        pixels = [rgba[i:i + 4] for i in range(0, len(rgba), 4)]
        red = [p for p in pixels if p[3] and p[0] > 2 * p[1]]
        assert len(red) > 256 * 256 // 10  # a red tomato, not an empty square
    stamp = made.stat().st_mtime_ns
    assert content_thumbnail(glb, "abc", tmp_path) == made
    assert made.stat().st_mtime_ns == stamp  # drawn once per content hash


def test_an_image_is_scaled_down(tmp_path: Path):
    source = tmp_path / "wide.png"
    Image.new("RGB", (800, 400), (20, 120, 40)).save(source)
    with Image.open(content_thumbnail(source, "def", tmp_path / "cache")) as img:
        assert img.size == (256, 128)
