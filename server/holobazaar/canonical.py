"""Canonical JSON (RFC 8785, JCS) and the state hash clients and server agree on.

The browser computes the same bytes with the `canonicalize` npm package, so a client's
heartbeat `state_hash` equals the server's when they render the same state."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

_SAFE_INT = 2**53


def canonical_bytes(value: Any) -> bytes:
    return rfc8785.dumps(value)


def is_plain(value: Any) -> bool:
    """True when orjson's sorted compact output of `value` is its RFC 8785 form: strings,
    nulls, booleans, integers in JSON's safe range, lists, and objects with ASCII keys
    (sorted alike by code unit and by byte). Floats and other keys take rfc8785."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if type(value) is int:
        return -_SAFE_INT < value < _SAFE_INT
    if isinstance(value, dict):
        return all(type(k) is str and k.isascii() and is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    return False


def canonical_fast(value: Any) -> bytes:
    """`canonical_bytes`, the same bytes (tests check), through orjson when the value is
    plain JSON (~20 times faster: audit entries and public records are hashed per change).
    A lone surrogate, which orjson refuses, takes rfc8785 (which says what is wrong)."""
    if is_plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return rfc8785.dumps(value)


def state_hash(state: Any) -> str:
    """Hex SHA-256 of the canonical JSON of a state."""
    return hashlib.sha256(canonical_bytes(state)).hexdigest()
