"""Canonical JSON (RFC 8785, JCS) and the state hash clients and server agree on.

The browser computes the same bytes with the `canonicalize` npm package, so a client's
heartbeat `state_hash` equals the server's when they render the same state."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_bytes(value: Any) -> bytes:
    return rfc8785.dumps(value)


def state_hash(state: Any) -> str:
    """Hex SHA-256 of the canonical JSON of a state."""
    return hashlib.sha256(canonical_bytes(state)).hexdigest()
