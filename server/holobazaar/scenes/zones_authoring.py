"""Authoring a market's zones (issue #18): the `zones:` list of `scenes/<m>/market.yaml`,
read with the file's revision (ETag) and replaced under If-Match the way display files are
(scenes/authoring.py): checked with the loader's own models, merged into the round-trip
tree (comments, key order and the formatting of untouched parts kept), written to a
temporary file and renamed, then reloaded; if the loader's cross-file checks refuse the
market (a display still in a zone that is gone), the previous file is put back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from holobazaar.scenes.authoring import (
    AuthoringError,
    _plain,
    _yaml,
    etag_of,
    merge,
    pointer,
    write_checked,
)
from holobazaar.scenes.models import Zone
from holobazaar.scenes.service import SceneService

ZONES = TypeAdapter(list[Zone])
MAX_ZONES = 200


def market_path(scenes: SceneService, market: str) -> Path:
    found = scenes.market(market)
    if found is None:
        raise AuthoringError(404, f"no market {market!r}")
    return (scenes.content_dir / found.file).resolve()


def read_zones(scenes: SceneService, market: str) -> tuple[list[dict[str, Any]], str]:
    """The zones as the file has them (plain data) and the market file's etag."""
    raw = market_path(scenes, market).read_bytes()
    zones = _plain(_yaml().load(raw)).get("zones") or []
    return zones, etag_of(raw)


def check_zones(zones: Any) -> list[dict[str, str]]:
    """The loader's model checks and its duplicate check, as JSON pointers."""
    if not isinstance(zones, list) or not zones:
        return [{"pointer": "/zones", "message": "a market needs at least one zone"}]
    if len(zones) > MAX_ZONES:
        return [{"pointer": "/zones", "message": f"at most {MAX_ZONES} zones"}]
    try:
        parsed = ZONES.validate_python(zones)
    except ValidationError as exc:
        return [{"pointer": pointer(("zones", *e["loc"])), "message": e["msg"]}
                for e in exc.errors()]
    seen: set[str] = set()
    problems = []
    for index, zone in enumerate(parsed):
        if zone.id in seen:
            problems.append({"pointer": f"/zones/{index}/id",
                             "message": f"{zone.id!r} is defined twice"})
        seen.add(zone.id)
    return problems


def _clean(zone: dict[str, Any]) -> dict[str, Any]:
    """A zone as the file should say it: defaults left out, the map in flow style."""
    out: dict[str, Any] = {"id": zone["id"], "name": zone["name"]}
    if zone.get("description"):
        out["description"] = zone["description"]
    if zone.get("map") is not None:
        out["map"] = {k: int(v) if isinstance(v, float) and v.is_integer() else v
                      for k, v in dict(zone["map"]).items()}
    return out


async def save_zones(scenes: SceneService, market: str, zones: Any,
                     if_match: str | None) -> str:
    """Replace the market's zones; returns the market file's new etag."""
    if not if_match:
        raise AuthoringError(428, "If-Match is required (the etag from GET .../zones)")
    path = market_path(scenes, market)
    raw = path.read_bytes()
    if if_match.strip() != etag_of(raw):
        current, etag = read_zones(scenes, market)
        raise AuthoringError(412, {"message": "the market's zones changed since you loaded "
                                   "them", "current": current, "etag": etag})
    problems = check_zones(zones)
    if problems:
        raise AuthoringError(422, {"message": "invalid zones", "errors": problems})
    y = _yaml()
    tree = y.load(raw)
    existing = {z.get("id"): z for z in tree.get("zones") or [] if hasattr(z, "get")}
    new_list = []
    for zone in zones:
        cleaned = _clean(zone)
        old = existing.get(cleaned["id"])
        # An existing zone keeps its comments and formatting; only what changed is new.
        new_list.append(merge(old, cleaned) if old is not None else _flow_map(cleaned))
    seq = tree.get("zones")
    if isinstance(seq, CommentedSeq):  # the list's own comments and style stay
        for i, value in enumerate(new_list):
            if i < len(seq):
                seq[i] = value
            else:
                seq.append(value)
        del seq[len(new_list):]
    else:
        tree["zones"] = new_list
    return etag_of(await write_checked(scenes, path, y, tree, raw, "invalid zones"))


def _flow_map(zone: dict[str, Any]) -> Any:
    """A new zone written like the demo's: block keys, the map as `{x: .., y: ..}`."""
    out = CommentedMap(zone)
    if "map" in zone:
        rect = CommentedMap(zone["map"])
        rect.fa.set_flow_style()
        out["map"] = rect
    return out


async def create_zone(scenes: SceneService, market: str, zone: dict[str, Any]) -> str:
    zones, etag = read_zones(scenes, market)
    if any(z.get("id") == zone.get("id") for z in zones):
        raise AuthoringError(409, {"message": f"zone {zone.get('id')!r} already exists",
                                   "errors": [{"pointer": "/id",
                                               "message": "a zone with this id exists"}]})
    try:
        return await save_zones(scenes, market, [*zones, zone], etag)
    except AuthoringError as exc:
        raise _one(exc, len(zones)) from None


async def update_zone(scenes: SceneService, market: str, zone_id: str,
                      changes: dict[str, Any], if_match: str | None) -> str:
    """Change one zone's name, description or map (its id stays: displays name it)."""
    zones, _etag = read_zones(scenes, market)
    index = next((i for i, z in enumerate(zones) if z.get("id") == zone_id), None)
    if index is None:
        raise AuthoringError(404, f"no zone {zone_id!r} in market {market!r}")
    zones[index] = {**zones[index], **changes, "id": zone_id}
    try:
        return await save_zones(scenes, market, zones, if_match)
    except AuthoringError as exc:
        raise _one(exc, index) from None


def _one(exc: AuthoringError, index: int) -> AuthoringError:
    """Pointers into the list (/zones/3/name) as pointers into the one zone (/name)."""
    if exc.status != 422 or not isinstance(exc.detail, dict):
        return exc
    prefix = f"/zones/{index}"
    errors = [dict(e, pointer=e["pointer"][len(prefix):] or "/")
              if e["pointer"].startswith(prefix) else e for e in exc.detail["errors"]]
    return AuthoringError(422, dict(exc.detail, errors=errors))
