"""Staff pages: sign in, sign out, and the signed-in home that links to what the user's
roles allow. Forms carry a CSRF token: the session's for signed-in forms, and for the
login form (no session yet) a double-submit cookie."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar.accounts import service
from holobazaar.accounts.dependencies import SESSION_COOKIE, session_cookie
from holobazaar.accounts.models import Principal

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

LOGIN_CSRF_COOKIE = "hb_login_csrf"
MAX_FORM_BYTES = 8 * 1024
GENERIC_FAILURE = "Wrong user name or password."
NO_STORE = {"Cache-Control": "no-store"}


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.cookie_secure
    return request.url.scheme == "https" if setting == "auto" else bool(setting)


def _set_cookie(response: Response, request: Request, name: str, value: str,
                max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form (first value per field), None when too large or not a form."""
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[0] for key, values in fields.items()}


def _safe_next(target: str | None) -> str:
    # Only local paths: "//evil.example" and "/\\evil" would leave the site.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) \
            and len(target) <= 200:
        return target
    return "/home"


def _login_page(request: Request, status: int, error: str | None, next_url: str,
                csrf: str | None = None) -> Response:
    csrf = csrf or request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login.html", {"error": error, "csrf": csrf, "next": next_url},
        status_code=status, headers=NO_STORE)
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf, max_age=3600)
    return response


async def _signed_in(request: Request) -> tuple[str, Principal] | None:
    cookie = session_cookie(request)
    if cookie is None:
        return None
    principal = await run_in_threadpool(service.principal_for_session,
                                        request.app.state.engine, cookie)
    return (cookie, principal) if principal is not None else None


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, 200, None, _safe_next(next))


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _login_page(request, 400, "Send the sign-in form.", "/home")
    next_url = _safe_next(form.get("next"))
    if not service.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_page(request, 403, "The form expired; please sign in again.", next_url,
                           csrf=secrets.token_urlsafe(32))
    settings = request.app.state.settings
    policy = service.ThrottlePolicy(settings.login_account_failures,
                                    settings.login_address_failures, settings.login_window,
                                    settings.login_backoff)
    address = request.client.host if request.client else "unknown"
    try:
        cookie, _session = await run_in_threadpool(
            service.login, request.app.state.engine, form.get("username", "")[:200],
            form.get("password", ""), address, policy, settings.session_ttl)
    except service.Throttled as exc:
        response = _login_page(request, 429, "Too many attempts; try again later.", next_url)
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response
    except service.AccountError:
        return _login_page(request, 401, GENERIC_FAILURE, next_url)
    # A brand-new session id, whatever cookie the browser brought (no fixation).
    response = RedirectResponse(next_url, status_code=303, headers=NO_STORE)
    _set_cookie(response, request, SESSION_COOKIE, cookie, max_age=int(settings.session_ttl))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request) or {}
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    cookie, principal = signed_in
    if not service.csrf_matches(principal.session_csrf, form.get("csrf")):
        return Response("forbidden", status_code=403, media_type="text/plain")
    await run_in_threadpool(service.logout, request.app.state.engine, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/home", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login?next=/home", status_code=303)
    _, principal = signed_in
    links = []
    if principal.allows("curator", None):
        links.append(("Curation", "/curate", "scenes, stories, inventory review"))
    if principal.allows("performer", None):
        links.append(("Performance", "/perform", "show consoles"))
    if "admin" in principal.roles:
        links += [("Operations: metrics", "/metrics", "Prometheus metrics"),
                  ("Operations: health", "/healthz", "health check"),
                  ("API", "/docs", "OpenAPI documentation")]
    grants = sorted(principal.grants)
    return templates.TemplateResponse(
        request, "home.html",
        {"user": principal.name, "grants": grants, "links": links,
         "csrf": principal.session_csrf}, headers=NO_STORE)
