"""Schema-driven fuzzing of every HTTP route in the OpenAPI document (Schemathesis), against
`holobazaar serve` on a loopback port, with and without credentials.

Builds on tests/accounts/test_openapi_walk.py (which sends three fixed bodies to every
write route anonymously): here every route - reads too - gets generated requests, valid
and invalid by its schema (path and query parameters, headers, bodies), from a caller
drawn per example: anonymous, garbage credentials, a curator or a performer of the demo
market, a curator of another market, an admin. For each:

* no 5xx, and the server's log holds no traceback;
* a response whose status the document describes matches its schema (Schemathesis'
  `response_schema_conformance`);
* a write by a caller without the route's role in that market (require_role, read from
  the route itself) is refused: 401/403 (or 404/405/413 when the request never reached the
  route), never a 2xx and never a 422 that would describe the expected body.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from fastapi.routing import iter_route_contexts
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.test_openapi_walk import PUBLIC_WRITES, WRITE_METHODS
from fuzz.budget import fuzz_settings
from holobazaar.accounts.dependencies import _requirements
from holobazaar.config import Settings
from holobazaar.web.app import create_app

from support.processes import ServeProcess

MARKET = "greenhaven"
# Real names of the demo content, so generated requests also reach past the 404s.
KNOWN = {"market": MARKET, "sku": "TOM-BRANDY", "show": "harvest-collective",
         "display": "zonneveld-greens", "slug": "pumpkin-soup", "kind": "recipe"}

APP = create_app(Settings(watch=False))
DOCUMENT = APP.openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = sorted((method.upper(), path) for path, item in DOCUMENT["paths"].items()
                    for method in item)


def _route_roles() -> dict[tuple[str, str], tuple[str, ...] | None]:
    """(METHOD, path) -> the roles its require_role asks for; None: no role needed."""
    roles: dict[tuple[str, str], tuple[str, ...] | None] = {}
    for context in iter_route_contexts(APP.routes):
        dependant = getattr(context.original_route, "dependant", None)
        if dependant is None or context.path is None:
            continue
        needed = {role for requirement in _requirements(dependant)
                  for role in requirement.roles} or None
        for method in getattr(context.original_route, "methods", None) or ():
            roles[(method, context.path)] = tuple(sorted(needed)) if needed else None
    return roles


ROLES = _route_roles()
# The feed webhook takes no account: a request is let in by its HMAC signature
# (docs/inventory.md), which no caller here has.
# FastAPI answers a JSON body declared in another charset before any dependency runs
# (reported to the lead: docs/accounts.md says authentication wins over body errors).
PARSE_ERROR = '{"detail":"There was an error parsing the body"}'
SIGNED_WRITES = {("POST", "/api/v1/inventory/{market}/events")}


@dataclass(frozen=True)
class Caller:
    name: str
    roles: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    garbage: bool = False  # sends a made-up bearer token

    def may(self, method: str, path: str, market: str | None) -> bool:
        """Whether require_role lets this caller make this write."""
        needed = ROLES.get((method, path))
        if needed is None:
            return (method, path) in PUBLIC_WRITES
        if not self.roles:
            return False
        if "admin" in self.roles:
            return True
        if not set(self.roles) & set(needed):
            return False
        return market is None or market in self.markets or "*" in self.markets


CALLERS = [
    Caller("anonymous"),
    Caller("garbage token", garbage=True),
    Caller("curator", ("curator",), (MARKET,)),
    Caller("performer", ("performer",), (MARKET,)),
    Caller("curator elsewhere", ("curator",), ("riverside",)),
    Caller("admin", ("admin",)),
]


def headers_for(served: ServeProcess, caller: Caller) -> dict[str, str]:
    if caller.garbage:
        return {"Authorization": "Bearer hbt_" + "x" * 43}
    if not caller.roles:
        return {}
    return {"Authorization": f"Bearer {served.token(caller.roles, caller.markets)}"}


def cases(method: str, path: str) -> st.SearchStrategy:
    operation = SCHEMA[path][method]
    known = {name: value for name, value in KNOWN.items() if "{" + name + "}" in path}
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                  operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
    if known:
        strategies += [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE,
                                  path_parameters=known),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE,
                                  path_parameters=known)]
    return st.one_of(strategies)


@pytest.fixture(scope="module")
def fuzz_server(served: ServeProcess) -> ServeProcess:
    return served


def test_the_fuzz_covers_every_route_of_the_document():
    assert len(OPERATIONS) == sum(len(item) for item in DOCUMENT["paths"].values())
    assert ("PATCH", "/api/v1/markets/{market}/items/{sku}") in OPERATIONS
    for method, path in OPERATIONS:
        if method.lower() in WRITE_METHODS and (method, path) not in PUBLIC_WRITES | SIGNED_WRITES:
            assert ROLES.get((method, path)), f"{method} {path} declares no role"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_generated_requests(fuzz_server: ServeProcess, method: str, path: str):
    @fuzz_settings(quick=4, deep=200)
    @given(case=cases(method, path), caller=st.sampled_from(CALLERS))
    def run(case, caller: Caller):
        # The caller's credentials, never the ones Schemathesis made up for the scheme.
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() not in ("authorization", "cookie")}
        mark = fuzz_server.log_mark()
        response = case.call(base_url=fuzz_server.url,
                             headers=headers_for(fuzz_server, caller), timeout=30,
                             allow_redirects=False)
        status = response.status_code
        text = response.content[:300].decode(errors="replace")
        sent = f"query={case.query!r} headers={case.headers!r} body={case.body!r}"[:600]
        where = f"{caller.name}: {method} {case.formatted_path} {sent} -> {status} {text}"
        assert status < 500, where
        case.validate_response(response, checks=[
            not_a_server_error, status_code_conformance, content_type_conformance,
            response_schema_conformance])
        if method.lower() in WRITE_METHODS:
            market = (case.path_parameters or {}).get("market")
            if not caller.may(method, path, market if "{market}" in path else None):
                assert status in (401, 403, 404, 405, 413) or (
                    status == 400 and text == PARSE_ERROR), where
        assert fuzz_server.tracebacks(mark) == [], fuzz_server.log()[-4000:]

    run()
    assert fuzz_server.alive()



def test_a_message_422_matches_the_document(fuzz_server: ServeProcess):
    """Regression (found by the fuzzer): routes that check by hand answer 422 with one
    message, which the document described as FastAPI's list of errors only."""
    import httpx

    operation = SCHEMA["/api/v1/search"]["GET"]
    case = operation.Case(query={"q": "soup", "diet": "+"})
    response = httpx.get(f"{fuzz_server.url}/api/v1/search", params=case.query, timeout=30)
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)
    case.validate_response(response, checks=[response_schema_conformance])


BIG = str(2**63)  # one more than a database integer holds
OUT_OF_RANGE = [
    ("GET", "/api/v1/stories", {"offset": BIG}),
    ("GET", "/api/v1/recipes", {"offset": BIG}),
    ("GET", f"/api/v1/markets/{MARKET}/stories", {"offset": BIG}),
    ("GET", f"/api/v1/markets/{MARKET}/recipes", {"offset": BIG}),
    ("POST", f"/api/v1/markets/{MARKET}/stories/hens-in-the-orchard/revisions/{BIG}/restore",
     {}),
    ("POST", f"/api/v1/markets/{MARKET}/recipes/beetroot-and-goat-cheese-salad/revisions/"
             f"{BIG}/restore", {}),
    ("POST", f"/api/v1/reconcile/{MARKET}/held/{BIG}/approve", {}),
    ("POST", f"/api/v1/reconcile/{MARKET}/batches/{BIG}/approve", {}),
    ("POST", f"/api/v1/pulse/{MARKET}/feedback/{BIG}", {}),
    ("GET", f"/api/v1/markets/{MARKET}/items/TOM-BRANDY/history", {"cursor": BIG}),
    ("GET", f"/api/v1/markets/{MARKET}/audit/records", {"after": BIG}),
    ("POST", f"/api/v1/markets/{MARKET}/moderation/note/\u00b2/approve", {}),
    ("POST", f"/api/v1/reconcile/{MARKET}/batches/-{BIG}1/approve", {}),
    ("POST", f"/api/v1/pulse/{MARKET}/feedback/-{BIG}1", {}),
]


@pytest.mark.parametrize(("method", "path", "query"), OUT_OF_RANGE,
                         ids=[f"{m} {p} {q}" for m, p, q in OUT_OF_RANGE])
def test_numbers_out_of_range_are_4xx(fuzz_server: ServeProcess, method: str, path: str,
                                      query: dict):
    """Regression (found by the fuzzer): ids, cursors and offsets past 2**63 - 1 (or below
    -2**63) reached
    the database driver (OverflowError, HTTP 500); a note id of "²" passed isdigit()."""
    import httpx

    mark = fuzz_server.log_mark()
    headers = headers_for(fuzz_server, CALLERS[-1])  # admin: past every role check
    body = {"status": "approved"} if "feedback" in path else None
    response = httpx.request(method, fuzz_server.url + path, params=query, json=body,
                             headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert fuzz_server.tracebacks(mark) == []
