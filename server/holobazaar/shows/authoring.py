"""Authoring a show's cue list (issue #18): `scenes/<m>/shows/<show>.yaml` read with its
revision (sha256 of the file, the ETag) and replaced under If-Match the way display files
are (holobazaar.scenes.authoring): checked with the loader's own models and cross-file
checks (displays, nodes, zone, `next`, continue loops) with `holobazaar validate`'s
messages as JSON pointers, merged into the round-trip tree so comments, key order and the
formatting of untouched parts stay, written atomically, then reloaded (the previous file
comes back if the market would not load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from holobazaar.scenes.authoring import (
    ID_RE,
    AuthoringError,
    _loader_problem,
    _plain,
    _yaml,
    etag_of,
    merge,
    write_checked,
)
from holobazaar.scenes.service import SceneService
from holobazaar.scenes.yamlsource import Problem, SourceDocument, pydantic_problems
from holobazaar.shows import timing
from holobazaar.shows.loader import check_show
from holobazaar.shows.models import Show, ShowFile


def show_path(scenes: SceneService, market: str, show: str) -> Path:
    """The file that defines `show` (by convention `<show>.yaml`; any file of the market's
    shows folder whose `show.id` it is)."""
    found = scenes.market(market)
    if found is None:
        raise AuthoringError(404, f"no market {market!r}")
    if not ID_RE.match(show) or show not in found.shows:
        known = ", ".join(sorted(found.shows)) or "none"
        raise AuthoringError(404, f"market {market!r} has no show {show!r} (shows: {known})")
    folder = (scenes.content_dir / found.file).resolve().parent / "shows"
    conventional = folder / f"{show}.yaml"
    candidates = [conventional, *sorted(p for p in folder.glob("*.yaml") if p != conventional)]
    for path in candidates:
        if path.is_file():
            data = _plain(_yaml().load(path.read_bytes()))
            if isinstance(data, dict) and (data.get("show") or {}).get("id") == show:
                return path
    raise AuthoringError(404, f"the file of show {show!r} is gone")


def read_show(scenes: SceneService, market: str, show: str) -> tuple[Any, str]:
    path = show_path(scenes, market, show)
    raw = path.read_bytes()
    return _plain(_yaml().load(raw)), etag_of(raw)


def _pointers(problems: list[Problem]) -> list[dict[str, str]]:
    return [_loader_problem(str(p)) for p in problems]


def check(scenes: SceneService, market: str, show: str, doc: Any,
          file: str = "show") -> tuple[Show | None, list[dict[str, str]]]:
    """The loader's checks of a show document: its models, then the market (displays,
    nodes, zone), cue numbers, `next` and continue loops. (show, []) when it would load."""
    if not isinstance(doc, dict):
        return None, [{"pointer": "", "message": "expected a mapping at the top of the file"}]
    source = SourceDocument(file, doc)
    try:
        parsed = ShowFile.model_validate(doc).show
    except ValidationError as exc:
        return None, _pointers(pydantic_problems(source, exc))
    if parsed.id != show:
        return None, [{"pointer": "/show/id",
                       "message": f"must stay {show!r} (a performer's console and OSC name it)"}]
    found = scenes.market(market)
    assert found is not None
    problems: list[Problem] = []
    check_show(source, parsed, found.market, found.displays, problems)
    return (None, _pointers(problems)) if problems else (parsed, [])


def cue_timeline(show: Show) -> list[dict[str, Any]]:
    """When each cue runs if every GO comes as soon as the cues before it ended (seconds
    from the first GO): what the studio's timeline draws."""
    return [{"number": f.number, "name": f.name, "start": round(f.start / timing.MS, 3),
             "end": round(f.end / timing.MS, 3), "child": f.child, "index": f.index}
            for f in timing.timeline(show)]


async def save_show(scenes: SceneService, market: str, show: str, doc: Any,
                    if_match: str | None) -> str:
    """Replace the show's file; returns the new etag. 428/412/422 as AuthoringError."""
    if not if_match:
        raise AuthoringError(428, "If-Match is required (the etag from GET .../source)")
    path = show_path(scenes, market, show)
    raw = path.read_bytes()
    if if_match.strip() != etag_of(raw):
        current, etag = read_show(scenes, market, show)
        raise AuthoringError(412, {"message": "the show changed since you loaded it",
                                   "current": current, "etag": etag})
    _parsed, problems = check(scenes, market, show, doc, relative_name(scenes, path))
    if problems:
        raise AuthoringError(422, {"message": "invalid show", "errors": problems})
    y = _yaml()
    tree = y.load(raw)
    _align_cues(tree, doc)
    return etag_of(await write_checked(scenes, path, y, merge(tree, doc), raw, "invalid show"))


def _align_cues(tree: Any, doc: dict) -> None:
    """Put the file's cues in the document's order, matched by number, before merging: a
    cue moved in the list takes its comments and formatting with it."""
    cues = (tree.get("show") or {}).get("cues") if hasattr(tree, "get") else None
    new = (doc.get("show") or {}).get("cues")
    if not isinstance(cues, CommentedSeq) or not isinstance(new, list):
        return
    by_number = {c.get("number"): c for c in cues if hasattr(c, "get")}
    order = [by_number.pop(c.get("number"), None) if isinstance(c, dict) else None
             for c in new]
    aligned = [old if old is not None else CommentedMap() for old in order]
    for i, item in enumerate(aligned):
        if i < len(cues):
            cues[i] = item
        else:
            cues.append(item)
    del cues[len(aligned):]


def relative_name(scenes: SceneService, path: Path) -> str:
    try:
        return str(path.relative_to(scenes.content_dir.resolve()))
    except ValueError:
        return path.name
