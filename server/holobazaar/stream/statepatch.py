"""Diff two states into a JSON Patch, and apply one by copying only what it touches.

`diff` replaces jsonpatch.make_patch on the hub's publish path (that one compares values
by JSON-encoding them at every level, the publish hotspot): it walks both states once,
comparing scalars by type and value (so 1, 1.0 and true stay distinct, as in JSON), and
emits add/remove/replace ops only; lists are compared index by index, with adds or
removes at the end when the length changed.

`jsonpatch.apply_patch` deep-copies the whole document on every change. The hub keeps
the state after each recent entry (to coalesce patches and check heartbeats), so it
applies patches with path copying instead: the new state shares every untouched subtree
with the old one, which stays valid and unchanged. Neither is ever mutated in place.
Ops other than add/replace/remove (move, copy, test) take jsonpatch's own path."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import orjson

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


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1") if ("~" in key or "/" in key) else key


def _same_json(a: Any, b: Any) -> bool:
    """Whether two containers Python finds equal are the same JSON: `==` takes 0 for
    False and 1 for 1.0, JSON does not (nor the state hash)."""
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:  # orjson.JSONEncodeError: walk them instead
        return False


def _diff(a: Any, b: Any, path: str, ops: list[dict]) -> None:
    if a is b:
        return
    ta, tb = type(a), type(b)
    if ta is tb and (ta is dict or ta is list) and a == b and _same_json(a, b):
        return  # equal containers: compared in C instead of walked in Python
    if ta is dict and tb is dict:
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in b.items():
            if key in a:
                _diff(a[key], value, f"{path}/{_escape(key)}", ops)
            else:
                ops.append({"op": "add", "path": f"{path}/{_escape(key)}", "value": value})
    elif ta is list and tb is list:
        common = min(len(a), len(b))
        for i in range(common):
            _diff(a[i], b[i], f"{path}/{i}", ops)
        for i in range(common, len(b)):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
        for i in range(len(a) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": f"{path}/{i}"})
    elif ta is not tb or ta is dict or ta is list or a != b:
        ops.append({"op": "replace", "path": path, "value": b})


def diff(a: Any, b: Any) -> list[dict]:
    """JSON Patch ops taking `a` to `b` (values are shared with `b`, never copied)."""
    ops: list[dict] = []
    _diff(a, b, "", ops)
    return ops


def apply_ops(doc: Any, ops: list[dict]) -> Any:
    """The document after `ops` (RFC 6902); `doc` itself is left unchanged."""
    try:
        return _fast(doc, ops)
    except _Unsupported:
        return jsonpatch.apply_patch(doc, ops)
