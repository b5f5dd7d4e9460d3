"""Apply a JSON Patch by copying only what it touches.

`jsonpatch.apply_patch` deep-copies the whole document on every change. The hub keeps
the state after each recent entry (to coalesce patches and check heartbeats), so it
applies patches with path copying instead: the new state shares every untouched subtree
with the old one, which stays valid and unchanged. Neither is ever mutated in place.
Ops other than add/replace/remove (move, copy, test) take jsonpatch's own path."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

_SIMPLE = frozenset(("add", "replace", "remove"))


class _Unsupported(Exception):
    pass


def _token(raw: str) -> str:
    return raw.replace("~1", "/").replace("~0", "~") if "~" in raw else raw


def _index(container: list, token: str, *, insert: bool) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _Unsupported(token)
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise _Unsupported(token)
    return index


def _shallow(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise _Unsupported(type(value).__name__)


def _fast(doc: Any, ops: list[dict]) -> Any:
    fresh: set[int] = set()
    root = doc
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind not in _SIMPLE or not isinstance(path, str):
            raise _Unsupported(kind)
        if path == "":
            if kind == "remove" or "value" not in op:
                raise _Unsupported(path)
            root = copy.deepcopy(op["value"])
            fresh.add(id(root))
            continue
        if not path.startswith("/"):
            raise _Unsupported(path)
        tokens = [_token(t) for t in path[1:].split("/")]
        if id(root) not in fresh:
            root = _shallow(root)
            fresh.add(id(root))
        parent = root
        for raw in tokens[:-1]:
            if isinstance(parent, dict):
                if raw not in parent:
                    raise _Unsupported(raw)
                child = parent[raw]
                key: Any = raw
            elif isinstance(parent, list):
                key = _index(parent, raw, insert=False)
                child = parent[key]
            else:
                raise _Unsupported(raw)
            if id(child) not in fresh:
                child = _shallow(child)
                fresh.add(id(child))
                parent[key] = child
            parent = child
        last = tokens[-1]
        if kind != "remove" and "value" not in op:
            raise _Unsupported("value")
        if isinstance(parent, dict):
            if kind == "add":
                parent[last] = copy.deepcopy(op["value"])
            elif last not in parent:
                raise _Unsupported(last)
            elif kind == "replace":
                parent[last] = copy.deepcopy(op["value"])
            else:
                del parent[last]
        elif isinstance(parent, list):
            index = _index(parent, last, insert=kind == "add")
            if kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[index] = copy.deepcopy(op["value"])
            else:
                del parent[index]
        else:
            raise _Unsupported(last)
    return root


def apply_ops(doc: Any, ops: list[dict]) -> Any:
    """The document after `ops` (RFC 6902); `doc` itself is left unchanged."""
    try:
        return _fast(doc, ops)
    except _Unsupported:
        return jsonpatch.apply_patch(doc, ops)
