"""Staff pages: sign in, sign out, and the signed-in home that links to what the user's
roles allow. Forms carry a CSRF token: the session's for signed-in forms, and for the
login form (no session yet) a double-submit cookie."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.accounts import service, totp
from holobazaar.accounts.addresses import client_address, is_https
from holobazaar.accounts.dependencies import SESSION_COOKIE, session_cookie
from holobazaar.accounts.models import Principal
from holobazaar.web.attention import attention
from holobazaar.web.i18n import templates as page_templates
from holobazaar.web.services import services
from holobazaar.web.studio.shell import read_form

router = APIRouter(include_in_schema=False)
templates = page_templates()  # web/i18n.py: gettext, lang and dir

LOGIN_CSRF_COOKIE = "hb_login_csrf"
MAX_FORM_BYTES = 8 * 1024
GENERIC_FAILURE = "Wrong user name or password."
TOO_MANY = "Too many attempts; try again later."
EXPIRED = "The sign-in expired; enter your password again."
CHALLENGE_COOKIE = "hb_login_challenge"
NO_STORE = {"Cache-Control": "no-store"}


def _secure(request: Request) -> bool:
    setting = services(request).settings.cookie_secure
    return is_https(request) if setting == "auto" else bool(setting)


def _set_cookie(response: Response, request: Request, name: str, value: str,
                max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form (first value per field), None when too large or not a form."""
    fields = await read_form(request, MAX_FORM_BYTES, max_fields=10)
    return None if fields is None else {key: values[0] for key, values in fields.items()}


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
    engine = services(request).engine
    principal = await db.call(engine, service.principal_for_session, engine, cookie)
    return (cookie, principal) if principal is not None else None


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, 200, None, _safe_next(next))


def _signed_in_response(request: Request, cookie: str, next_url: str) -> Response:
    # A brand-new session id, whatever cookie the browser brought (no fixation).
    response = RedirectResponse(next_url, status_code=303, headers=NO_STORE)
    _set_cookie(response, request, SESSION_COOKIE, cookie,
                max_age=int(services(request).settings.session_ttl))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    response.delete_cookie(CHALLENGE_COOKIE, path="/")
    return response


def _throttled(page: Response, exc: service.Throttled) -> Response:
    page.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return page


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _login_page(request, 400, "Send the sign-in form.", "/home")
    next_url = _safe_next(form.get("next"))
    if not service.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_page(request, 403, "The form expired; please sign in again.", next_url,
                           csrf=secrets.token_urlsafe(32))
    settings = services(request).settings
    engine = services(request).engine
    try:
        cookie, _session = await db.call(
            engine, service.login, engine, form.get("username", "")[:200],
            form.get("password", ""), client_address(request),
            service.ThrottlePolicy.from_settings(settings), settings.session_ttl)
    except service.Throttled as exc:
        return _throttled(_login_page(request, 429, TOO_MANY, next_url), exc)
    except service.SecondFactorDue as due:
        response = RedirectResponse(f"/login/code?{urlencode({'next': next_url})}",
                                    status_code=303, headers=NO_STORE)
        _set_cookie(response, request, CHALLENGE_COOKIE, due.challenge,
                    max_age=int(service.CHALLENGE_TTL.total_seconds()))
        return response
    except service.AccountError:
        return _login_page(request, 401, GENERIC_FAILURE, next_url)
    return _signed_in_response(request, cookie, next_url)


def _code_page(request: Request, status: int, error: str | None, next_url: str) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request, "login_code.html", {"error": error, "csrf": csrf, "next": next_url},
        status_code=status, headers=NO_STORE)
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf, max_age=3600)
    return response


@router.get("/login/code", response_class=HTMLResponse)
async def login_code_form(request: Request, next: str | None = None) -> Response:
    """The second step for accounts with a second factor: the authenticator's code."""
    if not request.cookies.get(CHALLENGE_COOKIE):
        return RedirectResponse(f"/login?{urlencode({'next': _safe_next(next)})}", 303)
    return _code_page(request, 200, None, _safe_next(next))


@router.post("/login/code")
async def login_code_submit(request: Request) -> Response:
    form = await _form(request)
    if form is None:
        return _code_page(request, 400, "Send the code form.", "/home")
    next_url = _safe_next(form.get("next"))
    challenge = request.cookies.get(CHALLENGE_COOKIE, "")[:128]
    if not service.csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")) \
            or not challenge:
        return _login_page(request, 403, "The form expired; please sign in again.", next_url,
                           csrf=secrets.token_urlsafe(32))
    settings = services(request).settings
    engine = services(request).engine
    try:
        cookie, _session = await db.call(
            engine, service.login_code, engine, challenge,
            form.get("code", "")[:20], client_address(request),
            service.ThrottlePolicy.from_settings(settings), settings.session_ttl)
    except service.Throttled as exc:
        return _throttled(_code_page(request, 429, TOO_MANY, next_url), exc)
    except service.ChallengeExpired:
        response = _login_page(request, 401, EXPIRED, next_url)
        response.delete_cookie(CHALLENGE_COOKIE, path="/")
        return response
    except service.AccountError:
        return _code_page(request, 401, "Wrong code: use the current one from your "
                          "authenticator app.", next_url)
    return _signed_in_response(request, cookie, next_url)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request) or {}
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    cookie, principal = signed_in
    if not service.csrf_matches(principal.session_csrf, form.get("csrf")):
        return Response("forbidden", status_code=403, media_type="text/plain")
    engine = services(request).engine
    await db.call(engine, service.logout, engine, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/home", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login?next=/home", status_code=303)
    _, principal = signed_in
    if principal.must_change_password:
        return RedirectResponse(password_change_url("/home"), status_code=303,
                                headers=NO_STORE)
    if principal.roles == {"grower"}:
        # A grower's landing page is their farm's (/studio leads to it, or lets a grower
        # of several markets choose).
        return RedirectResponse("/studio", status_code=303, headers=NO_STORE)
    links = []
    if principal.allows_any(("curator", "grower"), None):
        links.append(("Studio", "/studio", "displays, inventory, holds, stories, moderation"))
    if principal.allows("performer", None):
        links.append(("Performance", "/perform", "show consoles"))
    content = services(request).scenes.content
    for market in sorted(content.markets.values() if content else [], key=lambda m: m.id):
        if principal.allows("curator", market.id):
            links.append((f"Pulse: {market.market.market.name}", f"/curate/{market.id}/pulse",
                           "visitors' reactions today"))
    if "admin" in principal.roles:
        links += [("Second factor", "/account/totp", "an authenticator code at sign-in"),
                  ("Sign-ins", "/admin/sign-ins", "unlock held-back sign-ins, reset second "
                   "factors"),
                  ("Operations: metrics", "/metrics", "Prometheus metrics"),
                  ("Operations: health", "/healthz", "health check"),
                  ("API", "/docs", "OpenAPI documentation")]
    links.append(("Your password", "/account/password", "change the password you sign in "
                  "with"))
    grants = sorted(principal.grants)
    return templates.TemplateResponse(
        request, "home.html",
        {"user": principal.name, "grants": grants, "links": links,
         "markets": await attention(request, principal),
         "csrf": principal.session_csrf}, headers=NO_STORE)


# ---- every signed-in user: their own password -----------------------------------------


def password_change_url(next_url: str) -> str:
    """Where a user on a temporary password is sent first (then on to `next_url`)."""
    return f"/account/password?{urlencode({'next': _safe_next(next_url)})}"


def _password_page(request: Request, principal: Principal, next_url: str, status: int = 200,
                   errors: dict[str, str] | None = None) -> Response:
    return templates.TemplateResponse(request, "account_password.html", {
        "user": principal.name, "csrf": principal.session_csrf, "next": next_url,
        "forced": principal.must_change_password, "errors": errors or {}},
        status_code=status, headers=NO_STORE)


@router.get("/account/password", response_class=HTMLResponse)
async def password_form(request: Request, next: str | None = None) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login?next=/account/password", status_code=303)
    return _password_page(request, signed_in[1], _safe_next(next))


@router.post("/account/password")
async def password_submit(request: Request) -> Response:
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse("/login?next=/account/password", status_code=303)
    cookie, principal = signed_in
    form = await _form(request)
    if form is None or not service.csrf_matches(principal.session_csrf, form.get("csrf")):
        return Response("This form is from an older session; reload the page.",
                        status_code=403, media_type="text/plain", headers=NO_STORE)
    next_url = _safe_next(form.get("next"))
    new = form.get("new", "")
    if new != form.get("repeat", ""):
        return _password_page(request, principal, next_url, 422,
                              {"repeat": "The two new passwords differ: type it again."})
    settings = services(request).settings
    engine = services(request).engine
    try:
        await db.call(
            engine, service.change_own_password, engine, principal.id,
            form.get("current", ""), new, client_address(request),
            service.ThrottlePolicy.from_settings(settings), cookie)
    except service.Throttled as exc:
        return _throttled(_password_page(request, principal, next_url, 429,
                                         {"current": TOO_MANY}), exc)
    except service.AccountError as exc:
        field, _, message = str(exc).partition(": ")
        message = message[:1].upper() + message[1:] + "."
        return _password_page(request, principal, next_url, 422,
                              {field if field in ("current", "new") else "current": message})
    target = next_url if not next_url.startswith("/account/password") else "/home"
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


# ---- admins: second factor and held-back sign-ins -------------------------------------


async def _admin_page(request: Request, path: str) -> Principal | Response:
    """The signed-in admin, or the response to send instead (sign in / 403)."""
    signed_in = await _signed_in(request)
    if signed_in is None:
        return RedirectResponse(f"/login?{urlencode({'next': path})}", status_code=303)
    principal = signed_in[1]
    if "admin" not in principal.roles:
        return Response("admins only", status_code=403, media_type="text/plain",
                        headers=NO_STORE)
    return principal


async def _admin_form(request: Request, path: str) -> tuple[Principal, dict[str, str]] | Response:
    """A signed-in admin's POST with the session's CSRF token."""
    principal = await _admin_page(request, path)
    if isinstance(principal, Response):
        return principal
    form = await _form(request)
    if form is None or not service.csrf_matches(principal.session_csrf, form.get("csrf")):
        return Response("forbidden", status_code=403, media_type="text/plain")
    return principal, form


def _totp_page(request: Request, principal: Principal, status: int = 200,
               error: str | None = None, just_enabled: bool = False,
               pending: tuple[str, str] | None = None) -> Response:
    engine = services(request).engine
    enabled_at = service.totp_enabled(engine, principal.id)
    context = {"user": principal.name, "csrf": principal.session_csrf, "error": error,
               "enabled_at": enabled_at, "just_enabled": just_enabled}
    if enabled_at is None:
        secret, uri = pending or service.totp_pending(engine, principal.id) \
            or service.totp_start(engine, principal.id)
        context.update(qr=totp.qr_svg(uri),
                       secret_groups=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)))
    return templates.TemplateResponse(request, "totp.html", context, status_code=status,
                                      headers=NO_STORE)


@router.get("/account/totp", response_class=HTMLResponse)
async def totp_form(request: Request) -> Response:
    principal = await _admin_page(request, "/account/totp")
    if isinstance(principal, Response):
        return principal
    return await db.call(services(request).engine, _totp_page, request, principal)


@router.post("/account/totp")
async def totp_submit(request: Request) -> Response:
    checked = await _admin_form(request, "/account/totp")
    if isinstance(checked, Response):
        return checked
    principal, form = checked
    engine = services(request).engine
    if form.get("action") == "restart":
        pending = await db.call(engine, service.totp_start, engine, principal.id)
        return await db.call(engine, _totp_page, request, principal, 200, None, False, pending)
    if await db.call(engine, service.totp_enabled, engine, principal.id):
        return await db.call(engine, _totp_page, request, principal)
    try:
        ok = await db.call(engine, service.totp_confirm, engine, principal.id,
                           form.get("code", "")[:20])
    except service.AccountError:
        ok = False
    if not ok:
        return await db.call(
            engine, _totp_page, request, principal, 422,
            "That code did not match: check the phone's clock and enter the current code.")
    return await db.call(engine, _totp_page, request, principal, 200, None, True)


def _sign_ins_page(request: Request, principal: Principal, notice: str | None) -> Response:
    settings = services(request).settings
    engine = services(request).engine
    policy = service.ThrottlePolicy.from_settings(settings)
    factors = [f for f in service.second_factors(engine) if f[1] or f[2]]
    return templates.TemplateResponse(request, "sign_ins.html", {
        "csrf": principal.session_csrf, "notice": notice,
        "entries": service.throttled(engine, policy), "factors": factors,
        "window_minutes": round(policy.window / 60), "now": service.now()},
        headers=NO_STORE)


@router.get("/admin/sign-ins", response_class=HTMLResponse)
async def sign_ins(request: Request) -> Response:
    principal = await _admin_page(request, "/admin/sign-ins")
    if isinstance(principal, Response):
        return principal
    return await db.call(services(request).engine, _sign_ins_page, request, principal, None)


@router.post("/admin/sign-ins/unlock")
async def sign_ins_unlock(request: Request) -> Response:
    checked = await _admin_form(request, "/admin/sign-ins")
    if isinstance(checked, Response):
        return checked
    principal, form = checked
    account, address = form.get("account") or None, form.get("address") or None
    engine = services(request).engine
    count = await db.call(engine, service.unlock, engine, account, address, principal.actor)
    what = " from ".join(x for x in (account, address) if x) or "every sign-in"
    return await db.call(engine, _sign_ins_page, request, principal,
                         f"Unlocked {what}: {count} failure(s) forgotten.")


@router.post("/admin/sign-ins/reset-totp")
async def sign_ins_reset_totp(request: Request) -> Response:
    checked = await _admin_form(request, "/admin/sign-ins")
    if isinstance(checked, Response):
        return checked
    principal, form = checked
    name = form.get("user", "")[:64]
    engine = services(request).engine
    try:
        await db.call(engine, service.reset_totp, engine, name, principal.actor)
    except service.AccountError:
        return await db.call(engine, _sign_ins_page, request, principal, f"No user {name!r}.")
    return await db.call(engine, _sign_ins_page, request, principal,
                         f"Second factor of {name} removed; they can set it up again.")
