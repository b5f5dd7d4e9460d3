"""THE one way a route declares who may call it: `Depends(require_role("curator"))`.

The requirement reads the market from the route's `market` path parameter, accepts
`Authorization: Bearer <token>` or the session cookie (cookie-authenticated unsafe methods
must also send `X-CSRF-Token`), and returns the Principal. `guard_before_body(app)` makes
a route's role check win over body parsing and validation errors, so an anonymous caller
gets 401, never a 422 that describes the body."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from holobazaar import db
from holobazaar.accounts import service
from holobazaar.accounts.models import ROLES, Principal
from holobazaar.dependencies import app_services, get_engine
from holobazaar.validation import request_validation_response

SESSION_COOKIE = "hb_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_AUTH_HEADER = 512
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
QUERY_SECRETS = ("access_token", "token")

# auto_error=False: the requirement decides and answers with one uniform 401. These
# objects exist so the OpenAPI document lists both schemes under securitySchemes.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer",
                           description="API token: `Authorization: Bearer hbt_...`")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                             description="Session cookie from /login; unsafe methods also "
                                         f"need the `{CSRF_HEADER}` header.")

UNAUTHORIZED = HTTPException(401, "authentication required",
                             headers={"WWW-Authenticate": "Bearer"})
FORBIDDEN = HTTPException(403, "forbidden")
PASSWORD_FIRST = HTTPException(403, "choose your own password first: you signed in with a "
                                    "temporary one (/account/password)")
_STATE_KEY = "holobazaar_principal"
_AUDITED_KEY = "holobazaar_audited"
_PENDING_KEY = "holobazaar_write_record"


def session_cookie(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) <= 128 else None


def _bearer(request: Request) -> str | None:
    """The bearer token, None without an Authorization header; malformed -> 401."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    if len(header) > MAX_AUTH_HEADER:
        raise UNAUTHORIZED
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials or " " in credentials:
        raise UNAUTHORIZED
    return credentials


async def authenticate(request: Request) -> Principal | None:
    """Who is calling (None: anonymous). Raises 401 for bad credentials of any kind and for
    a cookie-authenticated unsafe request without the matching CSRF header."""
    if any(name in request.query_params for name in QUERY_SECRETS):
        raise UNAUTHORIZED  # secrets in URLs end up in logs and browser history
    engine = get_engine(request)
    token = _bearer(request)
    unsafe = request.method not in SAFE_METHODS
    if token is not None:
        cache: service.TokenCache = app_services(request).token_cache
        principal = await db.call(engine, service.principal_for_token, engine, token, cache)
        if principal is None:
            raise UNAUTHORIZED
        return principal
    cookie = session_cookie(request)
    if cookie is None:
        return None
    principal = await db.call(engine, service.principal_for_session, engine, cookie)
    if principal is None:
        raise UNAUTHORIZED
    if unsafe and not service.csrf_matches(principal.session_csrf,
                                           request.headers.get(CSRF_HEADER)):
        raise FORBIDDEN
    return principal


class WriteRecord:
    """A token write's audit record, deferred by `require_role(..., defer_audit=True)` so
    the route appends it in its own transaction (`append`, before its change). Whatever
    happens, `settle` (which the route calls in a `finally`) writes it on its own unless
    that transaction committed: no allowed token write goes unrecorded."""

    def __init__(self, principal: Principal, request: str, market: str | None) -> None:
        self.principal, self.request, self.market = principal, request, market
        self.committed = False

    def append(self, session: Session) -> None:
        service.record_write_in(session, self.principal, self.request, self.market, True)
        event.listen(session, "after_commit", self._done, once=True)

    def _done(self, _session: Session) -> None:
        self.committed = True

    async def settle(self, engine: Engine) -> None:
        if not self.committed:
            self.committed = True
            await db.call(engine, service.record_write, engine, self.principal, self.request,
                          self.market, True)


def take_write_record(request: Request) -> WriteRecord | None:
    """The deferred audit record of this request (None: nothing to record, or recorded)."""
    record = request.scope.pop(_PENDING_KEY, None)
    return record if isinstance(record, WriteRecord) else None


async def settle_write_record(request: Request) -> None:
    record = take_write_record(request)
    if record is not None:
        await record.settle(get_engine(request))


class RoleRequirement:
    """A dependency object (so `guard_before_body` can find it in a route's dependants).
    `defer_audit`: the route takes the token write's audit record (`take_write_record`)
    and appends it in its own transaction."""

    def __init__(self, roles: tuple[str, ...], defer_audit: bool = False) -> None:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        self.roles = roles
        self.defer_audit = defer_audit

    def __repr__(self) -> str:
        return f"require_role{self.roles!r}"

    async def check(self, request: Request) -> Principal:
        cached = request.scope.get(_STATE_KEY)
        principal = cached if cached is not None else await authenticate(request)
        if principal is None:
            raise UNAUTHORIZED
        request.scope[_STATE_KEY] = principal
        if principal.kind == "user" and principal.must_change_password:
            # An invited user on a temporary password: pages send them to choose their own;
            # the API (the studio's calls, curl with the cookie) refuses until they have.
            raise PASSWORD_FIRST
        market = request.path_params.get("market")
        allowed = principal.allows_any(self.roles, market)
        await _record(request, principal, market, allowed, self.defer_audit)
        if not allowed:
            raise FORBIDDEN
        return principal

    async def __call__(
        self, request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        _cookie: str | None = Depends(cookie_scheme),
    ) -> Principal:
        # The security dependencies are declared only so OpenAPI shows the schemes;
        # `check` reads the request itself (guard_before_body calls it too).
        return await self.check(request)


async def _record(request: Request, principal: Principal, market: str | None,
                  allowed: bool, defer: bool = False) -> None:
    """Audit token writes and refused writes, once per request (the check may run twice
    when a validation error follows). `defer`: an allowed write's record waits for the
    route (WriteRecord)."""
    if request.method in SAFE_METHODS or request.scope.get(_AUDITED_KEY):
        return
    if principal.kind == "token" or not allowed:
        request.scope[_AUDITED_KEY] = True
        if defer and allowed:
            request.scope[_PENDING_KEY] = WriteRecord(
                principal, f"{request.method} {request.url.path}", market)
            return
        engine = get_engine(request)
        await db.call(engine, service.record_write, engine, principal,
                      f"{request.method} {request.url.path}", market, allowed)


def require_role(*roles: str, defer_audit: bool = False) -> RoleRequirement:
    """`Depends(require_role("curator", "admin"))`: any one of the roles, in the market of
    the route's `market` path parameter when it has one. No roles: any signed-in caller.
    `defer_audit`: see RoleRequirement."""
    return RoleRequirement(tuple(roles), defer_audit)


def _requirements(dependant: Dependant) -> Iterator[RoleRequirement]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleRequirement):
            yield dep.call
        yield from _requirements(dep)


def _route_dependant(scope: Scope) -> Dependant | None:
    """The dependant of the route that matched, including router-level dependencies."""
    try:  # FastAPI >= 0.16x keeps the effective (included) route in the scope
        from fastapi.routing import _get_scope_effective_route_context
        effective = _get_scope_effective_route_context(scope)
    except ImportError:
        effective = None
    for candidate in (effective, scope.get("route")):
        dependant = getattr(candidate, "dependant", None)
        if isinstance(dependant, Dependant):
            return dependant
    return None


async def _auth_before_validation(request: Request, exc: Exception) -> Response:
    # FastAPI parses the JSON body (and reports bad JSON as 422) before it runs any
    # dependency, and reports body errors as 422 when no dependency raised. For a route
    # that requires a role, authentication must win: an anonymous caller learns nothing
    # about the body the route expects.
    dependant = _route_dependant(request.scope)
    if dependant is not None:
        try:
            for requirement in _requirements(dependant):
                await requirement.check(request)
            await settle_write_record(request)  # the route will not run
        except HTTPException as refused:
            return JSONResponse({"detail": refused.detail}, refused.status_code,
                                headers=refused.headers)
    assert isinstance(exc, RequestValidationError)
    return request_validation_response(exc)  # never echoes the input (NaN, surrogates)


def guard_before_body(app: FastAPI) -> None:
    """Make role checks win over request validation errors on every route of `app`."""
    app.add_exception_handler(RequestValidationError, _auth_before_validation)
