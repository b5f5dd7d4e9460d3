"""Accepting an upload: formats, zip extraction, and the structural checks that run before
any parser sees a file (GLB headers, glTF URIs confined to the upload, accessors inside
their buffers, image dimensions)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from PIL import Image

from holobazaar.assets.pipeline import Refused

MODEL_SUFFIXES = {".glb", ".gltf", ".obj", ".stl", ".ply"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
SIDE_SUFFIXES = {".bin", ".mtl", ".ktx2", *IMAGE_SUFFIXES}
SUPPORTED = sorted(MODEL_SUFFIXES | IMAGE_SUFFIXES | {".zip"})
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
# Looked up with unchecked glTF JSON values (a miss is a refusal).
COMPONENT_BYTES: dict[object, int] = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
TYPE_COMPONENTS: dict[object, int] = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4,
                                      "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 128 * 1024 * 1024
    max_zip_entries: int = 1000
    max_zip_ratio: int = 200
    max_image_pixels: int = 8192 * 8192
    max_vertices: int = 10_000_000

    @property
    def max_accessor_count(self) -> int:
        """Elements per accessor: a triangle list's indices are three per triangle."""
        return self.max_vertices * 3

    @property
    def image_limit(self) -> str:
        """The image limit as documented: `8192x8192 pixels` (an edge when it is square)."""
        edge = math.isqrt(self.max_image_pixels)
        return (f"{edge}x{edge} pixels" if edge * edge == self.max_image_pixels
                else f"{self.max_image_pixels:,} pixels")


@dataclass(frozen=True)
class Entry:
    path: Path
    kind: str  # gltf | glb | mesh | image


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or SCHEME.match(name) or not path.parts:
        raise Refused(f"zip member {name!r} points outside the upload")
    return path


def extract_zip(archive: Path, into: Path, limits: Limits) -> list[Path]:
    """Extract with limits on entry count, total size and compression ratio (zip bombs),
    refusing absolute names, `..` and symlinks (path traversal). Sizes are enforced while
    reading, not trusted from the directory."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused(f"{archive.name}: not a readable zip file ({exc})") from None
    out: list[Path] = []
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > limits.max_zip_entries:
            raise Refused(f"{archive.name}: {len(infos)} files, more than "
                          f"{limits.max_zip_entries}")
        total = 0
        for info in infos:
            member = _safe_member(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Refused(f"zip member {info.filename!r} is a symbolic link")
            target = into.joinpath(*member.parts)
            if target.exists():
                raise Refused(f"zip member {info.filename!r} appears twice")
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(info) as src, target.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    total += len(chunk)
                    if written > limits.max_file_bytes or total > limits.max_total_bytes:
                        raise Refused(f"{archive.name}: unpacks to more than "
                                      f"{limits.max_total_bytes} bytes (a zip bomb?)")
                    if written > max(info.compress_size, 1) * limits.max_zip_ratio + (1 << 20):
                        raise Refused(f"zip member {info.filename!r} expands more than "
                                      f"{limits.max_zip_ratio}x (a zip bomb?)")
                    dst.write(chunk)
            out.append(target)
    return out


def choose_entry(files: list[Path]) -> Entry:
    """The one model (or image) an upload is about; other files are its side files."""
    for f in files:
        suffix = f.suffix.lower()
        if suffix not in MODEL_SUFFIXES | SIDE_SUFFIXES:
            raise Refused(f"{f.name}: unsupported file type {suffix or '(none)'}; supported: "
                          f"{', '.join(SUPPORTED)} (and .bin, .mtl, .ktx2 beside a model)")
    models = [f for f in files if f.suffix.lower() in MODEL_SUFFIXES]
    if len(models) > 1:
        raise Refused("one model per upload: found " + ", ".join(sorted(f.name for f in models)))
    if models:
        model = models[0]
        suffix = model.suffix.lower()
        kind = {".glb": "glb", ".gltf": "gltf"}.get(suffix, "mesh")
        return Entry(model, kind)
    images = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    if len(images) == 1:
        return Entry(images[0], "image")
    if not images:
        raise Refused("no model or image in the upload (supported: " + ", ".join(SUPPORTED) + ")")
    raise Refused("several images and no model: upload one image at a time")


def check_image_header(data_or_path: bytes | Path, name: str, limits: Limits) -> tuple[int, int]:
    """Dimensions from the header only (no decoding), refusing decompression bombs."""
    import io
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    try:
        with Image.open(source) as img:
            width, height = img.size
            fmt = img.format
    except Image.DecompressionBombError:
        # Pillow's own limit (twice ours in the worker) stopped it before its size was read.
        raise Refused(f"{name}: the image is larger than the limit of {limits.image_limit} "
                      "(a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Refused(f"{name}: not a readable image ({exc})") from None
    if fmt not in {"PNG", "JPEG", "WEBP"}:
        raise Refused(f"{name}: image format {fmt} is not supported (PNG, JPEG or WebP)")
    if width * height > limits.max_image_pixels:
        raise Refused(f"{name}: {width}x{height} pixels, more than the limit of "
                      f"{limits.image_limit} (a decompression bomb?)")
    return width, height


def _chunk_name(kind: bytes, index: int) -> str:
    """`the JSON chunk`, `the binary (BIN) chunk`, `chunk 3 (of an unknown type)`."""
    names = {b"JSON": "the JSON chunk", b"BIN\0": "the binary (BIN) chunk"}
    return names.get(kind, f"chunk {index + 1} (of an unknown type)")


def read_glb(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """The JSON and BIN chunks of a GLB, checking every length against the real file."""
    data = path.read_bytes()
    if len(data) < 20:
        raise Refused(f"{path.name}: truncated GLB ({len(data)} bytes, a header needs 20)")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF":
        raise Refused(f"{path.name}: not a GLB file (a GLB starts with the signature "
                      "\"glTF\"; this file does not)")
    if version != 2:
        raise Refused(f"{path.name}: GLB version {version}, only glTF 2.0 is supported")
    if length != len(data):
        raise Refused(f"{path.name}: the GLB header says {length} bytes but the file has "
                      f"{len(data)} (truncated or corrupt)")
    offset = 12
    chunks: list[tuple[bytes, bytes]] = []
    while offset < len(data):
        if offset + 8 > len(data):
            raise Refused(f"{path.name}: truncated chunk header at byte {offset}")
        chunk_length, chunk_type = struct.unpack_from("<I4s", data, offset)
        start = offset + 8
        if start + chunk_length > len(data):
            raise Refused(f"{path.name}: {_chunk_name(chunk_type, len(chunks))} claims "
                          f"{chunk_length} bytes at byte {start}, past the end of the file")
        chunks.append((chunk_type, data[start:start + chunk_length]))
        offset = start + chunk_length + (-chunk_length % 4)
    if not chunks or chunks[0][0] != b"JSON":
        raise Refused(f"{path.name}: the first GLB chunk must be JSON")
    try:
        document = json.loads(chunks[0][1].rstrip(b" \x00").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"{path.name}: the JSON chunk is not valid JSON ({exc})") from None
    binary = chunks[1][1] if len(chunks) > 1 and chunks[1][0] == b"BIN\x00" else None
    return document, binary


def resolve_uri(uri: Any, base: Path, root: Path, where: str) -> Path | bytes:
    """A URI from a glTF: embedded data, or a file inside the upload. Everything else
    (absolute paths, `..` out of the upload, file:, http:, any scheme) is refused and never
    fetched."""
    if not isinstance(uri, str) or not uri:
        raise Refused(f"{where}: uri must be a non-empty string")
    if uri.startswith("data:"):
        header, _, payload = uri.partition(",")
        if not header.endswith(";base64"):
            raise Refused(f"{where}: data URIs must be base64")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(f"{where}: data URI is not valid base64") from None
    if SCHEME.match(uri) or uri.startswith(("/", "\\", "//")):
        raise Refused(f"{where}: uri {uri!r} is not a relative path inside the upload "
                      "(remote and absolute references are never fetched)")
    relative = PurePosixPath(unquote(uri).replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise Refused(f"{where}: uri {uri!r} points outside the upload")
    target = base.joinpath(*relative.parts)
    try:
        target.resolve().relative_to(root.resolve())
    except ValueError:
        raise Refused(f"{where}: uri {uri!r} points outside the upload") from None
    if not target.is_file():
        raise Refused(f"{where}: uri {uri!r} names a file that was not uploaded")
    return target


def _index(doc: dict, key: str, value: Any, where: str) -> dict:
    items = doc.get(key) or []
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(items):
        raise Refused(f"{where}: {key} index {value!r} does not exist")
    item = items[value]
    if not isinstance(item, dict):
        raise Refused(f"{key}[{value}] is not an object")
    return item


def _int(obj: dict, key: str, where: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refused(f"{where}: {key} must be a non-negative integer, not {value!r}")
    return value


def _check_view_range(doc: dict, view_index: Any, offset: int, length: int, where: str) -> None:
    view = _index(doc, "bufferViews", view_index, where)
    view_length = _int(view, "byteLength", f"bufferViews[{view_index}]")
    if offset + length > view_length:
        raise Refused(f"{where}: needs bytes {offset}..{offset + length} of bufferViews"
                      f"[{view_index}], which has only {view_length} (accessor overruns its "
                      "buffer)")


def check_gltf(doc: Any, base: Path, root: Path, binary: bytes | None, name: str,
               limits: Limits) -> None:
    """Structure a reader trusts: versions, URIs, buffer and accessor ranges, images."""
    if not isinstance(doc, dict):
        raise Refused(f"{name}: the glTF JSON must be an object")
    version = (doc.get("asset") or {}).get("version") if isinstance(doc.get("asset"), dict) \
        else None
    if not isinstance(version, str) or not version.startswith("2."):
        raise Refused(f"{name}: asset.version is {version!r}; only glTF 2.x is supported")
    for key in ("buffers", "bufferViews", "accessors", "images", "meshes", "nodes"):
        if key in doc and not isinstance(doc[key], list):
            raise Refused(f"{name}: {key} must be a list")
    sizes: list[int] = []
    for i, buf in enumerate(doc.get("buffers") or []):
        where = f"{name}: buffers[{i}]"
        if not isinstance(buf, dict):
            raise Refused(f"{where} is not an object")
        declared = _int(buf, "byteLength", where)
        if "uri" in buf:
            source = resolve_uri(buf["uri"], base, root, where)
            actual = len(source) if isinstance(source, bytes) else source.stat().st_size
        elif i == 0 and binary is not None:
            actual = len(binary)
        else:
            raise Refused(f"{where}: no uri and no GLB binary chunk")
        if actual < declared:
            raise Refused(f"{where}: declares {declared} bytes but its data has {actual}")
        sizes.append(declared)
    for i, view in enumerate(doc.get("bufferViews") or []):
        where = f"{name}: bufferViews[{i}]"
        if not isinstance(view, dict):
            raise Refused(f"{where} is not an object")
        buffer = view.get("buffer")
        if not isinstance(buffer, int) or not 0 <= buffer < len(sizes):
            raise Refused(f"{where}: buffer {buffer!r} does not exist")
        end = _int(view, "byteOffset", where, 0) + _int(view, "byteLength", where)
        if end > sizes[buffer]:
            raise Refused(f"{where}: ends at byte {end} of buffers[{buffer}], which has "
                          f"{sizes[buffer]}")
    for i, acc in enumerate(doc.get("accessors") or []):
        where = f"{name}: accessors[{i}]"
        if not isinstance(acc, dict):
            raise Refused(f"{where} is not an object")
        count = _int(acc, "count", where)
        if count > limits.max_accessor_count:
            raise Refused(f"{where}: {count:,} elements, over the limit of "
                          f"{limits.max_accessor_count:,} per accessor (three times the "
                          f"vertex limit of {limits.max_vertices:,})")
        size = COMPONENT_BYTES.get(acc.get("componentType"))
        components = TYPE_COMPONENTS.get(acc.get("type"))
        if size is None or components is None:
            raise Refused(f"{where}: unknown componentType/type {acc.get('componentType')!r}/"
                          f"{acc.get('type')!r}")
        element = size * components
        if "bufferView" in acc and count:
            view = _index(doc, "bufferViews", acc["bufferView"], where)
            stride = view.get("byteStride") or element
            if not isinstance(stride, int) or stride < element:
                raise Refused(f"{where}: byteStride {stride!r} is smaller than an element")
            _check_view_range(doc, acc["bufferView"], _int(acc, "byteOffset", where, 0),
                              stride * (count - 1) + element, where)
        sparse = acc.get("sparse")
        if isinstance(sparse, dict):
            n = _int(sparse, "count", f"{where}.sparse")
            if n > count:
                raise Refused(f"{where}.sparse: count {n} exceeds the accessor's {count}")
            for part, width in (("indices", COMPONENT_BYTES.get(
                    (sparse.get("indices") or {}).get("componentType"))), ("values", element)):
                block = sparse.get(part)
                if not isinstance(block, dict) or width is None:
                    raise Refused(f"{where}.sparse.{part} is missing or malformed")
                _check_view_range(doc, block.get("bufferView"),
                                  _int(block, "byteOffset", where, 0), width * n,
                                  f"{where}.sparse.{part}")
    for i, image in enumerate(doc.get("images") or []):
        where = f"{name}: images[{i}]"
        if not isinstance(image, dict):
            raise Refused(f"{where} is not an object")
        if "uri" in image:
            source = resolve_uri(image["uri"], base, root, where)
            if _is_raster(source):
                check_image_header(source, where, limits)
        elif "bufferView" in image:
            view = _index(doc, "bufferViews", image["bufferView"], where)
            buf = view.get("buffer")
            if buf == 0 and binary is not None and "uri" not in doc["buffers"][0]:
                start = view.get("byteOffset", 0)
                data = binary[start:start + view["byteLength"]]
                if image.get("mimeType") in ("image/png", "image/jpeg", "image/webp"):
                    check_image_header(data, where, limits)


def _is_raster(source: Path | bytes) -> bool:
    if isinstance(source, Path):
        return source.suffix.lower() in IMAGE_SUFFIXES
    return source[:8] == b"\x89PNG\r\n\x1a\n" or source[:3] == b"\xff\xd8\xff" or \
        (source[:4] == b"RIFF" and source[8:12] == b"WEBP")


def check_entry(entry: Entry, root: Path, limits: Limits) -> None:
    """Refuse what no parser should see. Runs before the worker touches the content."""
    name = entry.path.name
    if entry.kind == "glb":
        doc, binary = read_glb(entry.path)
        check_gltf(doc, entry.path.parent, root, binary, name, limits)
    elif entry.kind == "gltf":
        try:
            doc = json.loads(entry.path.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Refused(f"{name}: not valid glTF JSON ({exc})") from None
        check_gltf(doc, entry.path.parent, root, None, name, limits)
    elif entry.kind == "image":
        check_image_header(entry.path, name, limits)
    elif entry.path.suffix.lower() == ".obj":
        check_obj_references(entry.path, root, limits)


def _obj_libraries(path: Path) -> list[str]:
    """The `mtllib` names of an OBJ."""
    return [ref for line in path.read_text("utf-8", errors="replace").splitlines()
            if line.startswith("mtllib ") for ref in line.split()[1:]]


def _mtl_maps(mtl: Path) -> list[tuple[str, str]]:
    """(keyword, file name) of each texture map an MTL names."""
    found = []
    for line in mtl.read_text("utf-8", errors="replace").splitlines():
        parts = line.strip().split()
        if parts and parts[0].lower().startswith(("map_", "bump", "disp", "norm")):
            found.append((parts[0], parts[-1]))
    return found


def check_obj_references(path: Path, root: Path, limits: Limits) -> None:
    """OBJ `mtllib` and MTL `map_*` names must be files inside the upload (the mesh reader
    would otherwise open whatever path a file names)."""
    def inside(ref: str, base: Path, where: str) -> Path:
        result = resolve_uri(ref, base, root, where)
        assert isinstance(result, Path)
        return result

    for ref in _obj_libraries(path):
        mtl = inside(ref, path.parent, f"{path.name}: mtllib")
        for keyword, name in _mtl_maps(mtl):
            image = inside(name, mtl.parent, f"{mtl.name}: {keyword}")
            check_image_header(image, image.name, limits)


def referenced_files(entry: Path) -> list[Path]:
    """The files a .gltf (buffers and images by uri) or an .obj (its MTL libraries and
    their texture maps) names that exist in the entry's folder or below it: what a model
    given alone takes along. Names that are missing, outside the folder or not files are
    left for the checks to refuse with their own message."""
    folder = entry.parent.resolve()

    def local(ref: object, base: Path) -> Path | None:
        if not isinstance(ref, str) or not ref or ref.startswith("data:") or SCHEME.match(ref):
            return None
        target = base.joinpath(*PurePosixPath(unquote(ref).replace("\\", "/")).parts)
        try:
            target.resolve().relative_to(folder)
        except ValueError:
            return None
        return target if target.is_file() else None

    found: list[Path | None] = []
    if entry.suffix.lower() == ".gltf":
        try:
            doc = json.loads(entry.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return []
        for key in ("buffers", "images"):
            items = doc.get(key) if isinstance(doc, dict) else None
            found += [local(item.get("uri"), entry.parent) for item in items or []
                      if isinstance(item, dict)] if isinstance(items, list) else []
    elif entry.suffix.lower() == ".obj":
        for ref in _obj_libraries(entry):
            mtl = local(ref, entry.parent)
            found.append(mtl)
            if mtl is not None:
                found += [local(name, mtl.parent) for _, name in _mtl_maps(mtl)]
    unique: dict[Path, None] = {}
    for path in found:
        if path is not None and path.resolve() != entry.resolve():
            unique.setdefault(path, None)
    return list(unique)
