"""Bounded JSON decoding for everything that comes from outside: WebSocket frames, request
bodies read by hand, feeds and imports.

`loads` is `json.loads` with a size limit, a nesting-depth limit and no lone UTF-16
surrogates (`"\\ud800"` decodes to a string that cannot be stored or sent as UTF-8), and it
turns every failure into one error type, `JSONInputError` (a `ValueError`), whose message
says what is wrong and never echoes the input. Callers answer it the way their input
answers bad input: an `error` frame with code `bad_json`, a 400, a refused feed.

Cost on the common path: two `str.count` calls and one regular-expression search over the
text, all in C; the depth is only measured when the text holds more brackets than the
limit allows."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_DECODER = json.JSONDecoder()  # json.loads' own default, without its per-call checks
# A \uD800-\uDFFF escape: only then can the decoded value hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONInputError(ValueError):
    """Input that is not acceptable JSON. `reason`: `syntax`, `encoding`, `too_large`,
    `too_deep` or `surrogate`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (brackets inside strings do not
    count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads(data: str | bytes | bytearray, *, max_bytes: int | None = None,
          max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """`json.loads(data, **kwargs)` within the limits; raises `JSONInputError`."""
    if max_bytes is not None and (len(data) > max_bytes or (
            isinstance(data, str) and len(data) * 4 > max_bytes
            and len(data.encode("utf-8", "surrogatepass")) > max_bytes)):
        raise JSONInputError("too_large", f"over the limit of {max_bytes} bytes")
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode(json.detect_encoding(data))
        except (UnicodeDecodeError, LookupError):
            raise JSONInputError("encoding", "not UTF-8 text") from None
    if len(text) > max_depth and text.count("[") + text.count("{") > max_depth and (
            depth(text) > max_depth):
        raise JSONInputError("too_deep", f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, **kwargs) if kwargs else _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(
            "syntax", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JSONInputError("too_deep", "nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise JSONInputError("syntax", str(exc).split(";")[0]) from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise JSONInputError("surrogate", "a string holds a lone UTF-16 surrogate "
                             "(\\ud800-\\udfff without its pair)")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    # Pairs were joined by the decoder: any surrogate left is alone and cannot be encoded.
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
