"""Authoring a display's scene file through the API (issue #18): read it with its revision
(sha256 of the file bytes), replace it under If-Match, validated by the loader's own models,
written round-trip with ruamel.yaml (comments, key order and untouched formatting kept),
atomically; the scene service's reload then streams it through the hub."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from holobazaar.scenes.loader import scenes_root
from holobazaar.scenes.models import DisplayFile
from holobazaar.scenes.service import SceneService

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class AuthoringError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)  # the scene files' style: '  - id:'
    return y


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest() + '"'


def pointer(path: tuple | list | str) -> str:
    """A loader/pydantic path ('display.nodes.0.x' or a tuple) as a JSON pointer."""
    parts = path.split(".") if isinstance(path, str) else [str(p) for p in path]
    parts = [p for p in parts if p != ""]
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def display_path(scenes: SceneService, market: str, display: str) -> Path:
    if not ID_RE.match(market) or not ID_RE.match(display):
        raise AuthoringError(404, "no such display")
    found = scenes.market(market)
    if found is None:
        raise AuthoringError(404, f"no market {market!r}")
    root = scenes_root(scenes.content_dir).resolve()
    rel = found.display_files.get(display)
    if rel is not None:
        path = (scenes.content_dir / rel).resolve()
    else:
        path = root / market / "displays" / f"{display}.yaml"
    if not path.is_relative_to(root / market):
        raise AuthoringError(404, "no such display")
    return path


def read_source(scenes: SceneService, market: str, display: str) -> tuple[Any, str]:
    path = display_path(scenes, market, display)
    if not path.is_file():
        raise AuthoringError(404, f"no display {display!r} in market {market!r}")
    raw = path.read_bytes()
    return _plain(_yaml().load(raw)), etag_of(raw)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def validate_document(doc: Any, display: str | None = None) -> list[dict[str, str]]:
    """The loader's model checks, as JSON pointers with messages."""
    if not isinstance(doc, dict):
        return [{"pointer": "", "message": "expected a mapping at the top of the document"}]
    try:
        parsed = DisplayFile.model_validate(doc)
    except ValidationError as exc:
        return [{"pointer": pointer(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    if display is not None and parsed.display.id != display:
        return [{"pointer": "/display/id",
                 "message": f"must stay {display!r} (create a new display to change it)"}]
    return []


def merge(target: Any, new: Any) -> Any:
    """`new` applied onto the round-trip tree `target`: untouched keys keep their comments
    and formatting; key order follows the existing file, new keys go last."""
    if isinstance(target, CommentedMap) and isinstance(new, dict):
        for key in [k for k in target if k not in new]:
            del target[key]
        for key, value in new.items():
            target[key] = merge(target[key], value) if key in target else value
        return target
    if isinstance(target, CommentedSeq) and isinstance(new, list):
        for i, value in enumerate(new):
            if i < len(target):
                target[i] = merge(target[i], value)
            else:
                target.append(value)
        del target[len(new):]
        return target
    return new


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def save_source(scenes: SceneService, market: str, display: str, doc: Any,
                      if_match: str | None) -> str:
    """Replace the display's file; returns the new etag. 428/412/422 as AuthoringError."""
    if not if_match:
        raise AuthoringError(428, "If-Match is required (the etag from GET .../source)")
    path = display_path(scenes, market, display)
    if not path.is_file():
        raise AuthoringError(404, f"no display {display!r} in market {market!r}")
    raw = path.read_bytes()
    if if_match.strip() != etag_of(raw):
        current, etag = read_source(scenes, market, display)
        raise AuthoringError(412, {"message": "the display changed since you loaded it",
                                   "current": current, "etag": etag})
    problems = validate_document(doc, display)
    if problems:
        raise AuthoringError(422, {"message": "invalid display", "errors": problems})
    y = _yaml()
    tree = merge(y.load(raw), doc)
    buf = io.BytesIO()
    y.dump(tree, buf)
    new = buf.getvalue()
    write_atomic(path, new)
    if not await scenes.reload():
        # The loader's cross-file checks refused it: put the last good file back.
        problems_text = scenes.last_problems
        write_atomic(path, raw)
        await scenes.reload()
        raise AuthoringError(422, {"message": "invalid display", "errors": [
            {"pointer": "", "message": line} for line in problems_text.splitlines() if line]})
    return etag_of(new)
