"""Image assets: a power-of-two WebP no larger than the edge limit, a PNG/JPEG fallback for
clients without WebP, and a thumbnail."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from holobazaar.assets.pipeline import Refused


def _floor_pow2(n: int) -> int:
    return 1 << max(0, n.bit_length() - 1)


def process_image(source: Path, outdir: Path, max_edge: int) -> list[dict]:
    """Writes image.webp, fallback.(png|jpg) and thumbnail.png; returns file descriptions."""
    try:
        with Image.open(source) as opened:
            opened.load()
            fmt = opened.format
            img = ImageOps.exif_transpose(opened)
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            img = img.convert("RGBA" if has_alpha else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise Refused(f"{source.name}: cannot decode the image ({exc})") from None
    w, h = img.size
    factor = min(1.0, max_edge / max(w, h))
    size = (_floor_pow2(max(1, round(w * factor))), _floor_pow2(max(1, round(h * factor))))
    resized = img.resize(size, Image.Resampling.LANCZOS) if size != img.size else img
    webp = outdir / "image.webp"
    resized.save(webp, "WEBP", quality=82, method=4)
    fallback_ext = "png" if has_alpha or fmt == "PNG" else "jpg"
    fallback = outdir / f"fallback.{fallback_ext}"
    if fallback_ext == "png":
        resized.save(fallback, "PNG", optimize=True)
    else:
        resized.save(fallback, "JPEG", quality=85, optimize=True, progressive=True)
    thumb = img.copy()
    thumb.thumbnail((256, 256))
    thumbnail = outdir / "thumbnail.png"
    thumb.save(thumbnail, "PNG", optimize=True)
    return [
        {"role": "image", "file": str(webp), "triangles": 0},
        {"role": "compat", "file": str(fallback), "triangles": 0},
        {"role": "thumbnail", "file": str(thumbnail), "triangles": 0},
    ]
