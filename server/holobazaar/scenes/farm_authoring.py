"""A farm's profile in `scenes/<m>/market.yaml` (issue #21: a grower edits their own farm):
the description, location, practices and photos of one entry of `farms:`, read with the
file's revision (ETag, sha256 of its bytes) and replaced under that revision the way the
authoring API writes display files (scenes/authoring.py): checked with the loader's own
model, merged into the round-trip tree (comments, key order and untouched formatting kept),
written to a temporary file and renamed, then reloaded through the scene service (the
normal path: displays that show `{{ farm.description }}` recompose and the hub streams
them). If the loader refuses the market, the previous file is put back. The farm's id and
name stay: displays, items and growers refer to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from holobazaar.scenes.authoring import (
    AuthoringError,
    _plain,
    _yaml,
    etag_of,
    merge,
    write_checked,
)
from holobazaar.scenes.models import Farm
from holobazaar.scenes.service import SceneService

PROFILE_FIELDS = ("location", "description", "practices", "photos")


def _market_file(scenes: SceneService, market: str) -> Path:
    found = scenes.market(market)
    if found is None:
        raise AuthoringError(404, f"no market {market!r}")
    return (scenes.content_dir / found.file).resolve()


def read_farm(scenes: SceneService, market: str, farm: str) -> tuple[dict[str, Any], str]:
    """The farm's entry as the file has it (plain data) and the market file's etag."""
    raw = _market_file(scenes, market).read_bytes()
    for entry in _plain(_yaml().load(raw)).get("farms") or []:
        if isinstance(entry, dict) and entry.get("id") == farm:
            return entry, etag_of(raw)
    raise AuthoringError(404, f"no farm {farm!r} in market {market!r}")


def check_profile(current: dict[str, Any], changes: dict[str, Any],
                  images: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The farm entry after `changes` (only PROFILE_FIELDS), and the problems per field
    (`field` or `photos.N`): the loader's model checks, and every photo must be an image
    of the market's assets (`images`, by name)."""
    entry = {**current, **{k: v for k, v in changes.items() if k in PROFILE_FIELDS}}
    for key in ("practices", "photos"):
        if not entry.get(key):
            entry.pop(key, None)  # an empty list is the default: leave it out of the file
    for key in ("location", "description"):
        if entry.get(key) == "":
            entry.pop(key)
    problems: dict[str, str] = {}
    try:
        Farm.model_validate(entry)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = [str(p) for p in error["loc"]]
            key = ".".join(loc[:2]) if loc and loc[0] == "photos" else (loc[0] if loc else "")
            problems.setdefault(key or "description", error["msg"])
    for index, photo in enumerate(entry.get("photos") or []):
        name = photo.get("asset") if isinstance(photo, dict) else None
        if f"photos.{index}" not in problems and name not in images:
            problems[f"photos.{index}"] = (f"{name!r} is not an image of this market's "
                                           "assets (upload it first)")
    return entry, problems


async def save_farm(scenes: SceneService, market: str, farm: str, changes: dict[str, Any],
                    if_match: str | None, images: set[str]) -> str:
    """Apply `changes` to the farm's profile; returns the market file's new etag. 412 when
    the file changed since `if_match` (`current` and `etag` in the detail), 422 with
    `errors` per field."""
    if not if_match:
        raise AuthoringError(428, "the revision the page was based on is required")
    path = _market_file(scenes, market)
    raw = path.read_bytes()
    current, etag = read_farm(scenes, market, farm)
    if if_match.strip() != etag:
        raise AuthoringError(412, {"message": "the market file changed since you loaded it",
                                   "current": current, "etag": etag})
    entry, problems = check_profile(current, changes, images)
    if problems:
        raise AuthoringError(422, {"message": "invalid farm profile", "errors": problems})
    y = _yaml()
    tree = y.load(raw)
    node = next(f for f in tree["farms"] if hasattr(f, "get") and f.get("id") == farm)
    if "\n" in entry.get("description", ""):  # paragraphs stay readable in the file
        entry["description"] = LiteralScalarString(entry["description"])
    merge(node, entry)
    if isinstance(node, CommentedMap) and node.fa.flow_style() and (
            set(entry) - {"id", "name", "location"} or len(str(entry.get("location"))) > 40):
        node.fa.set_block_style()  # a one-line `{id: .., name: ..}` grew a profile
    return etag_of(await write_checked(scenes, path, y, tree, raw, "invalid farm profile",
                                       _as_form_error))


def _as_form_error(problems: list[dict[str, str]]) -> dict[str, str]:
    """The loader's findings as the profile form's one message (its errors are per field)."""
    return {"form": "; ".join(p["message"] for p in problems)[:500]}
