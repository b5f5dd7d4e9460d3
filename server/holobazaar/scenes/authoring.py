"""Authoring a display's scene file through the API (issue #18): read it with its revision
(sha256 of the file bytes), replace it under If-Match, validated by the loader's own models,
written round-trip with ruamel.yaml (comments, key order and untouched formatting kept),
atomically; the scene service's reload then streams it through the hub."""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from sqlalchemy import func
from sqlmodel import col, select

from holobazaar.db import session_scope
from holobazaar.scenes.loader import draft_problems, scenes_root
from holobazaar.scenes.models import Display, DisplayFile
from holobazaar.scenes.models_db import DisplayRevision
from holobazaar.scenes.service import SceneService

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def preview_channel(market: str, display: str) -> str:
    """The curators-only draft channel of a display (channels.py: PRIVATE_KINDS)."""
    return f"market/{market}/preview/{display}"


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


_REPORT_LINE = re.compile(r"^(?P<file>[^:]+)(?::\d+)?: (?P<path>[^:]+): (?P<message>.*)$")


def _loader_problem(line: str) -> dict[str, str]:
    """A `holobazaar validate` line ('file:line: display.nodes[0].text: message') as a
    JSON pointer with the same message."""
    match = _REPORT_LINE.match(line)
    if match is None or match["path"] == "(document)":
        return {"pointer": "", "message": line}
    path = re.sub(r"\[(\d+)\]", r".\1", match["path"])
    return {"pointer": pointer(path), "message": match["message"], "file": match["file"]}


def validate_document(doc: Any, display: str | None = None) -> list[dict[str, str]]:
    """The loader's model checks, as JSON pointers with messages."""
    if not isinstance(doc, dict):
        return [{"pointer": "", "message": "expected a mapping at the top of the document"}]
    try:
        parsed = DisplayFile.model_validate(doc)
    except ValidationError as exc:
        return [{"pointer": pointer(_in_document(doc, e["loc"])), "message": e["msg"]}
                for e in exc.errors()]
    if display is not None and parsed.display.id != display:
        return [{"pointer": "/display/id",
                 "message": f"must stay {display!r} (create a new display to change it)"}]
    return []


def _in_document(doc: Any, loc: tuple) -> list:
    """A pydantic error location as a path into the document: the tag pydantic adds for a
    discriminated union (`nodes.0.panel.width`, `anchor.marker.size`) is not in the
    document, so it is left out (`nodes.0.width`)."""
    path: list = []
    here, tagged = doc, None
    for part in loc:
        # The tag: the node's kind, once, followed by a field of the node (the tag "text"
        # of a text node is not its `text` string, which holds no fields).
        if isinstance(here, dict) and here is not tagged and here.get("kind") == part \
                and not isinstance(here.get(part), dict | list):
            tagged = here
            continue
        path.append(part)
        if isinstance(here, dict):
            here = here.get(part)
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            here = None
    return path


def merge(target: Any, new: Any) -> Any:
    """`new` applied onto the round-trip tree `target`: untouched keys keep their comments
    and formatting; key order follows the existing file, new keys go last."""
    if isinstance(target, CommentedMap) and isinstance(new, dict):
        for key in [k for k in target if k not in new]:
            del target[key]
        for key, value in new.items():
            target[key] = merge(target[key], value) if key in target else styled(value)
        return target
    if isinstance(target, CommentedSeq) and isinstance(new, list):
        for i, value in enumerate(new):
            if i < len(target):
                target[i] = merge(target[i], value)
            else:
                target.append(styled(value))
        del target[len(new):]
        return target
    return styled(new)


def styled(value: Any) -> Any:
    """A new value in the scene files' style: a short list of plain values (a position,
    the items) on one line, `[0, 0.25, 0]`; mappings and other lists as blocks."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = styled(item)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(styled(item) for item in value)
        if len(value) <= 8 and all(isinstance(v, int | float | str) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


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


def _matching_file(scenes: SceneService, market: str, display: str,
                   if_match: str | None) -> tuple[Path, bytes]:
    """The display's file and bytes when `if_match` names its current etag; 428/404/412."""
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
    return path, raw


async def save_source(scenes: SceneService, market: str, display: str, doc: Any,
                      if_match: str | None, actor: str = "api",
                      action: str = "save") -> str:
    """Replace the display's file; returns the new etag. 428/412/422 as AuthoringError."""
    path, raw = _matching_file(scenes, market, display, if_match)
    problems = validate_document(doc, display)
    if problems:
        raise AuthoringError(422, {"message": "invalid display", "errors": problems})
    return await write_document(scenes, market, display, path, raw, doc, actor, action)


async def write_document(scenes: SceneService, market: str, display: str, path: Path,
                         raw: bytes, doc: Any, actor: str, action: str) -> str:
    """Write a validated document over the file's bytes `raw` (merged round-trip: comments
    and formatting of untouched keys kept), checked by the loader, recorded as a revision;
    returns the new etag. Also the path of a scheduled publish (scenes.scheduled_publish)."""
    y = _yaml()
    new = await write_checked(scenes, path, y, merge(y.load(raw), doc), raw, "invalid display")
    etag = etag_of(new)
    record(scenes, market, display, actor, action, etag, raw, new, doc)
    return etag


def _as_pointers(problems: list[dict[str, str]]) -> Any:
    return problems


async def write_checked(scenes: SceneService, path: Path, y: YAML, tree: Any,
                        before: bytes | None, what: str,
                        errors: Callable[[list[dict[str, str]]], Any] = _as_pointers,
                        ) -> bytes:
    """Write the round-trip tree to `path` (atomically) and reload the content; when the
    loader's cross-file checks refuse it, put the last good file back (`before`; None: the
    file is new, remove it) and raise 422 with the loader's findings as JSON pointers
    (`errors` shapes them for a caller whose page wants another form). Returns the bytes
    written."""
    buf = io.BytesIO()
    y.dump(tree, buf)
    new = buf.getvalue()
    write_atomic(path, new)
    if not await scenes.reload():
        problems_text = scenes.last_problems
        if before is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, before)
        await scenes.reload()
        raise AuthoringError(422, {"message": what, "errors": errors([
            _loader_problem(line) for line in problems_text.splitlines() if line])})
    return new


def record(scenes: SceneService, market: str, display: str, actor: str, action: str,
           etag: str, old: bytes, new: bytes, doc: Any) -> int:
    name = f"scenes/{market}/displays/{display}.yaml"
    diff = "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True), f"a/{name}", f"b/{name}"))
    with session_scope(scenes.engine) as session:
        last = session.exec(select(func.max(DisplayRevision.number)).where(
            DisplayRevision.market == market, DisplayRevision.display == display)).one()
        number = (last or 0) + 1
        session.add(DisplayRevision(market=market, display=display, number=number,
                                    actor=actor[:120], at=datetime.now(UTC), action=action,
                                    etag=etag, diff=diff, document=doc))
    return number


def revisions(scenes: SceneService, market: str, display: str) -> list[DisplayRevision]:
    with session_scope(scenes.engine) as session:
        return list(session.exec(select(DisplayRevision).where(
            DisplayRevision.market == market, DisplayRevision.display == display)
            .order_by(col(DisplayRevision.number).desc())).all())


def revision(scenes: SceneService, market: str, display: str, number: int) -> DisplayRevision:
    with session_scope(scenes.engine) as session:
        found = session.exec(select(DisplayRevision).where(
            DisplayRevision.market == market, DisplayRevision.display == display,
            DisplayRevision.number == number)).first()
    if found is None or found.document is None:
        raise AuthoringError(404, f"no revision {number} of display {display!r}")
    return found


async def restore(scenes: SceneService, market: str, display: str, number: int,
                  if_match: str | None, actor: str) -> str:
    found = revision(scenes, market, display, number)
    return await save_source(scenes, market, display, found.document, if_match, actor,
                             action=f"restore {number}")


def check_draft(scenes: SceneService, market: str, display: str, doc: Any) -> Display:
    """The loader's cross-file checks of a valid document, as a save makes them: an unknown
    item, zone, farm or asset is refused (422) before the draft is shown or scheduled."""
    found = scenes.market(market)
    assert found is not None and scenes.content is not None
    draft = DisplayFile.model_validate(doc).display
    file = found.display_files.get(display, f"scenes/{market}/displays/{display}.yaml")
    refused = draft_problems(scenes.content, found.market, draft, doc, file)
    if refused:
        raise AuthoringError(422, {"message": "invalid display", "errors": [
            _loader_problem(str(p)) for p in refused]})
    return draft


async def preview(scenes: SceneService, market: str, display: str, doc: Any) -> str:
    """Validate a draft and publish it, composed as visitors would see it with the market's
    live items, on the curators-only channel market/<m>/preview/<d>."""
    display_path(scenes, market, display)
    problems = validate_document(doc, display)
    if problems:
        raise AuthoringError(422, {"message": "invalid display", "errors": problems})
    found = scenes.market(market)
    assert found is not None
    draft = check_draft(scenes, market, display, doc)
    state, _errors = scenes.compose_display(found, draft)
    channel = preview_channel(market, display)
    await scenes.hub.publish(channel, state)
    return channel


TEMPLATE = """\
format: 1
display:
  id: {id}
  zone: {zone}
  title: {title}
  nodes:
    - id: sign
      kind: text
      text: "{{{{ display.id }}}}"
"""


def new_display_path(scenes: SceneService, market: str, display: str) -> Path:
    """Where a new display's file goes: 422 for an id outside the channel grammar, 409 when
    the display exists."""
    if not ID_RE.match(display):
        raise AuthoringError(422, {"message": "invalid display", "errors": [
            {"pointer": "/id", "message": "use a-z, 0-9 and '-' (up to 63 characters)"}]})
    path = display_path(scenes, market, display)
    found = scenes.market(market)
    if path.exists() or (found is not None and display in found.displays):
        raise AuthoringError(409, f"display {display!r} already exists")
    return path


async def create(scenes: SceneService, market: str, display: str, title: str, zone: str,
                 actor: str) -> str:
    path = new_display_path(scenes, market, display)
    found = scenes.market(market)
    assert found is not None
    y = _yaml()
    tree = y.load(TEMPLATE.format(id=display, zone="z", title="t"))
    tree["display"]["zone"] = zone
    tree["display"]["title"] = title
    problems = validate_document(_plain(tree), display)
    if zone not in {z.id for z in found.market.zones}:
        problems.append({"pointer": "/zone", "message": f"no zone {zone!r} in the market"})
    if problems:
        raise AuthoringError(422, {"message": "invalid display", "errors": problems})
    return await _write_new(scenes, market, display, path, y, tree, actor, "create")


async def _write_new(scenes: SceneService, market: str, display: str, path: Path, y: YAML,
                     tree: Any, actor: str, action: str) -> str:
    """Write a new display file, reload (removing it again if the market would not load)
    and record the revision."""
    new = await write_checked(scenes, path, y, tree, None, "invalid display")
    etag = etag_of(new)
    record(scenes, market, display, actor, action, etag, b"", new, _plain(tree))
    return etag


async def duplicate(scenes: SceneService, market: str, source: str, display: str,
                    actor: str, title: str | None = None) -> str:
    """A new display `display` with the same content as `source` (its file's comments and
    layout too), validated and recorded like a create; returns the new file's etag."""
    source_path = display_path(scenes, market, source)
    if not source_path.is_file():
        raise AuthoringError(404, f"no display {source!r} in market {market!r}")
    path = new_display_path(scenes, market, display)
    y = _yaml()
    tree = y.load(source_path.read_bytes())
    tree["display"]["id"] = display
    if title:
        tree["display"]["title"] = title
    problems = validate_document(_plain(tree), display)
    if problems:
        raise AuthoringError(422, {"message": "invalid display", "errors": problems})
    return await _write_new(scenes, market, display, path, y, tree, actor,
                            f"duplicate of {source}")


def _mentions(node: Any, display: str) -> bool:
    if isinstance(node, dict):
        return any((k in ("display", "displays") and (v == display or
                    (isinstance(v, list) and display in v))) or _mentions(v, display)
                   for k, v in node.items())
    if isinstance(node, list):
        return any(_mentions(v, display) for v in node)
    return False


def references(scenes: SceneService, market: str, display: str) -> list[str]:
    """What refers to a display: shows whose cues name it, and the market's marker sheet
    when the display stands on a printed marker (its card's QR code would lead nowhere)."""
    found = scenes.market(market)
    if found is None:
        return []
    out = []
    shown = found.displays.get(display)
    if shown is not None and shown.anchor.kind == "marker":
        out.append("the marker sheet (its printed marker card, anchor: marker)")
    for show_id, show in sorted(found.shows.items()):
        data = show.model_dump() if hasattr(show, "model_dump") else show
        if _mentions(data, display):
            out.append(f"show {show_id}")
    return out


async def delete(scenes: SceneService, market: str, display: str, if_match: str | None,
                 confirm: bool, actor: str) -> None:
    path, raw = _matching_file(scenes, market, display, if_match)
    refs = references(scenes, market, display)
    if refs and not confirm:
        raise AuthoringError(409, {"message": "other content refers to this display; "
                                   "repeat with ?confirm=true to delete it anyway",
                                   "referenced_by": refs})
    path.unlink()
    if not await scenes.reload():
        # A show that names it no longer loads: put the display back.
        problems_text = scenes.last_problems
        write_atomic(path, raw)
        await scenes.reload()
        raise AuthoringError(409, {"message": "deleting it would break other content",
                                   "referenced_by": refs, "errors": [
                                       _loader_problem(line)
                                       for line in problems_text.splitlines() if line]})
    record(scenes, market, display, actor, "delete", "", raw, b"", None)
