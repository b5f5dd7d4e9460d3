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


# Every error answer (4xx, 5xx) is `{"detail": ...}`: a message, FastAPI's list of
# `{loc, msg, type}`, or an object (`message` plus what the route adds: the authoring
# API's `errors` as JSON pointers, the `current` document and `etag` of a conflict); an
# unexpected failure adds the `error_id` it was logged under.
DETAIL_OBJECT = {"type": "object", "required": ["message"],
                 "properties": {"message": {"type": "string"}}}
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"title": "Detail", "anyOf": [
            {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
            {"type": "string"}, DETAIL_OBJECT]},
        "error_id": {"title": "Error Id", "type": "string"},
    },
}


def document_error_details(app: Any) -> None:
    """Make the OpenAPI document describe the errors the server sends: a 422's `detail` is
    FastAPI's list of `{loc, msg, type}` or, from routes that check by hand, one message or
    an object with a `message`; every other error status is the `default` response, an
    `Error`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if not fresh:
            return schema
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        detail = schemas.get("HTTPValidationError", {}).get("properties", {}).get("detail")
        if detail is not None and "anyOf" not in detail:
            title = detail.pop("title", "Detail")
            listed = dict(detail)
            detail.clear()
            detail.update({"title": title,
                           "anyOf": [listed, {"type": "string"}, DETAIL_OBJECT]})
        if "ValidationError" in schemas:
            schemas.setdefault("Error", ERROR_SCHEMA)
            error = {"description": "An error: `detail` says what is wrong.",
                     "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Error"}}}}
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict) and "responses" in operation:
                        operation["responses"].setdefault("default", error)
        return schema

    app.openapi = openapi
