"""Validation errors as answers: what was wrong (where, why, which rule), never the input.

pydantic's errors carry the offending input and its context; echoing them fails on values
JSON cannot carry (NaN, infinities, lone surrogates) and repeats what an attacker sent. Every
422 is built here: `error_details` for routes that validate by hand, and
`request_validation_response` for FastAPI's own body and parameter validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse


def _safe(text: str) -> str:
    # A message may quote the input; keep it encodable (a lone surrogate becomes \ud800).
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# The largest integer a database column holds (SQLite INTEGER, PostgreSQL bigint): ids,
# cursors and offsets from a request are bounded by it, so a larger one is a 422, not an
# OverflowError from the driver.
MAX_DB_INT = 2**63 - 1


def error_details(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`loc`, `msg` and `type` of each error, JSON-safe."""
    return [{"loc": [p if isinstance(p, int) else _safe(str(p)) for p in e.get("loc", ())],
             "msg": _safe(str(e.get("msg", ""))), "type": str(e.get("type", ""))}
            for e in errors]


def request_validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a request that fails validation, without the input."""
    return JSONResponse({"detail": error_details(exc.errors())}, status_code=422)


def document_error_details(app: Any) -> None:
    """Make the OpenAPI document's 422 describe what the server sends: FastAPI's list of
    `{loc, msg, type}` or, from routes that check by hand, one message (a string)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        detail = (schema.get("components", {}).get("schemas", {})
                  .get("HTTPValidationError", {}).get("properties", {}).get("detail"))
        if fresh and detail is not None and "anyOf" not in detail:
            title = detail.pop("title", "Detail")
            listed = dict(detail)
            detail.clear()
            detail.update({"title": title, "anyOf": [listed, {"type": "string"}]})
        return schema

    app.openapi = openapi
