"""Studio section: staff, /studio/<market>/staff (admins).

Users (create with a password or invite with a one-time temporary one, grant and revoke
roles per market, a grower with their farm, disable and enable, reset the password) and API
tokens (create with role, market, name and expiry, the secret shown once; revoke; when each
was last used). Everything goes through holobazaar.accounts.service, the same functions
and rules as `holobazaar user ...` and `holobazaar token ...`; the service writes every
change to the audit log with the signed-in admin as the actor. Forms are plain POSTs
(with the session's CSRF token) and work without scripts; a refused form is shown again
with the message next to its field.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.accounts import service as accounts
from holobazaar.accounts.models import ALL_MARKETS, ROLES
from holobazaar.db import as_utc
from holobazaar.web.services import services
from holobazaar.web.studio.shell import (
    NO_STORE,
    StudioPage,
    first,
    open_page,
    posted,
)

router = APIRouter(include_in_schema=False)

TOKEN_ROLES = tuple(r for r in ROLES if r != "grower")
EXPIRY_CHOICES = (("30d", "30 days"), ("7d", "7 days"), ("12h", "12 hours"),
                  ("90d", "90 days"), ("never", "Never"))
ROLE_HELP = {
    "admin": "everything, in every market",
    "curator": "displays, inventory, stories, moderation",
    "performer": "show consoles",
    "grower": "one farm's stock, profile and stories",
}


def _farms(page: StudioPage) -> dict[str, str]:
    content = services(page.request).scenes.market(page.market)
    return {f.id: f.name for f in content.market.farms} if content is not None else {}


def _known_farms(page: StudioPage) -> dict[str, list[str]]:
    return {page.market: list(_farms(page))}


def _context(page: StudioPage) -> dict[str, Any]:
    engine = services(page.request).engine
    now = datetime.now(UTC)
    users = []
    for user, grants in accounts.list_user_grants(engine):
        users.append({"name": user.name, "disabled": user.disabled,
                      "created_at": as_utc(user.created_at),
                      "grants": [{"role": r, "market": m, "farm": f,
                                  "here": m in (page.market, ALL_MARKETS)}
                                 for r, m, f in grants]})
    tokens = []
    for row in accounts.list_tokens(engine):
        expires = as_utc(row.expires_at)
        revoked = as_utc(row.revoked_at)
        state = ("revoked" if revoked else "expired" if expires and expires <= now
                 else "active")
        tokens.append({"id": row.id, "name": row.name, "roles": row.roles.split(),
                       "markets": row.markets.split(), "created_at": as_utc(row.created_at),
                       "expires_at": expires, "last_used_at": as_utc(row.last_used_at),
                       "revoked_at": revoked, "state": state})
    return {"users": users, "tokens": tokens, "roles": ROLES, "token_roles": TOKEN_ROLES,
            "role_help": ROLE_HELP, "farms": _farms(page), "expiry_choices": EXPIRY_CHOICES,
            "me": page.principal.name}


async def _render(page: StudioPage, status: int = 200, **extra: Any) -> Response:
    context = await db.call(services(page.request).engine, _context, page)
    context.setdefault("errors", {})
    context.setdefault("forms", {})
    context.update(extra)
    q = page.request.query_params
    if "done" in q and "notice" not in context:
        context["notice"] = q["done"][:200]
    return page.render("studio/staff.html", context, status=status)


def _back(page: StudioPage, notice: str) -> Response:
    from urllib.parse import urlencode

    return RedirectResponse(f"/studio/{page.market}/staff?{urlencode({'done': notice})}",
                            status_code=303, headers=NO_STORE)


async def _open(request: Request, market: str) -> StudioPage | Response:
    return await open_page(request, market, "staff")


def _check(errors: dict[str, str], key: str, check: Callable[[], Any]) -> Any:
    """Run one service check; its refusal becomes the message of field `key`."""
    try:
        return check()
    except accounts.AccountError as exc:
        errors[key] = str(exc)
        return None


def _market_choice(page: StudioPage, value: str) -> str | None:
    return value if value in (page.market, ALL_MARKETS) else None


def _grant_fields(page: StudioPage, form: dict[str, list[str]], prefix: str,
                  errors: dict[str, str]) -> tuple[str, str, str | None]:
    """Role, market and farm of a grant form, each checked with the service's rules."""
    role = first(form, "role")
    market = _market_choice(page, first(form, "market", page.market))
    farm = first(form, "farm").strip() or None
    if role not in ROLES:
        errors[f"{prefix}.role"] = "Choose a role."
    if market is None:
        errors[f"{prefix}.market"] = "Choose this market or every market."
    if market is None or f"{prefix}.role" in errors or f"{prefix}.market" in errors:
        return role, market or page.market, farm
    grants = _check(errors, f"{prefix}.market", lambda: accounts.check_grants([role], [market]))
    if grants is not None and role != "grower":
        farm = None  # the farm picker only matters for a grower; ignore a stale choice
    if grants is not None:
        try:
            accounts.check_farm(grants, farm, _known_farms(page))
        except accounts.AccountError as exc:
            # "one market (not '*')" is about the market choice; the rest about the farm.
            where = "market" if "one market" in str(exc) else "farm"
            errors[f"{prefix}.{where}"] = str(exc)
        if role == "grower" and not farm and f"{prefix}.market" not in errors:
            errors[f"{prefix}.farm"] = "Choose the grower's farm."
    return role, market or page.market, farm


# ---- the page -------------------------------------------------------------------------


@router.get("/studio/{market}/staff", response_class=HTMLResponse)
async def staff(request: Request, market: str) -> Response:
    page = await _open(request, market)
    if isinstance(page, Response):
        return page
    return await _render(page)


# ---- users ----------------------------------------------------------------------------


@router.post("/studio/{market}/staff/users")
async def create_user(request: Request, market: str) -> Response:
    checked = await posted(request, market, "staff")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    errors: dict[str, str] = {}
    name = first(form, "name").strip().lower()
    invite = first(form, "invite") == "1"
    password = first(form, "password")
    _check(errors, "create.name", lambda: accounts.check_name(name))
    if invite:
        password = secrets.token_urlsafe(12)
    else:
        _check(errors, "create.password", lambda: accounts.check_password(password))
    role, grant_market, farm = _grant_fields(page, form, "create", errors)
    engine = services(request).engine
    if not errors:
        try:
            await db.call(engine, accounts.create_user, engine, name,
                          password, [role], [grant_market],
                          actor=page.principal.actor, farm=farm,
                          known_farms=_known_farms(page), temporary=invite)
        except accounts.AccountError as exc:
            errors["create.name"] = str(exc)
    if errors:
        return await _render(page, 400, errors=errors, forms={"create": {
            "name": name, "role": role, "market": grant_market, "farm": farm or "",
            "invite": invite}})
    where = "every market" if grant_market == ALL_MARKETS else page.market_name
    notice = f"Created {name}: {role} in {where}" + (f", farm {farm}" if farm else "") + "."
    if invite:
        # Shown once, on this response only (never stored or logged): hand it over.
        return await _render(page, 201, notice=notice, secret={
            "kind": "password", "for": name, "value": password})
    return _back(page, notice)


def _user_action(action: str) -> Callable:
    async def handler(request: Request, market: str, name: str) -> Response:
        checked = await posted(request, market, "staff")
        if isinstance(checked, Response):
            return checked
        page, form = checked
        engine = services(request).engine
        actor = page.principal.actor
        errors: dict[str, str] = {}
        key = f"user.{name}"
        try:
            if action in ("disable", "enable"):
                if action == "disable" and name == page.principal.name:
                    errors[key] = "You cannot disable your own account here."
                else:
                    await db.call(engine, accounts.set_disabled, engine, name,
                                  action == "disable", actor=actor)
                    return _back(page, f"{'Disabled' if action == 'disable' else 'Enabled'} "
                                       f"{name}.")
            elif action == "password":
                password = first(form, "password")
                if _check(errors, f"{key}.password",
                          lambda: accounts.check_password(password)) is not None:
                    # Chosen for them: they choose their own at the next sign-in.
                    await db.call(engine, accounts.reset_password, engine, name, password,
                                  actor=actor, temporary=name != page.principal.name)
                    return _back(page, f"New password set for {name}; their sessions "
                                       "ended and they choose their own at the next "
                                       "sign-in.")
            elif action == "grant":
                role, grant_market, farm = _grant_fields(page, form, key, errors)
                if not errors:
                    await db.call(engine, accounts.change_grants, engine, name, [role],
                                  [grant_market], True, actor=actor, farm=farm,
                                  known_farms=_known_farms(page))
                    return _back(page, f"{name} is now {role}" + (
                        f" of farm {farm}" if farm else "") + ".")
            elif action == "revoke":
                role = first(form, "role")
                revoke_market = _market_choice(page, first(form, "market"))
                if role not in ROLES or revoke_market is None:
                    errors[key] = "That role is not one this page can take away."
                elif (name == page.principal.name and role == "admin"):
                    errors[key] = "You cannot take away your own admin role here."
                else:
                    await db.call(engine, accounts.change_grants, engine, name, [role],
                                  [revoke_market], False, actor=actor)
                    return _back(page, f"Took {role} away from {name}.")
        except accounts.AccountError as exc:
            errors[key] = str(exc)
        return await _render(page, 404 if "no user" in errors.get(key, "") else 400,
                             errors=errors, focus=key)

    return handler


for _action in ("disable", "enable", "password", "grant", "revoke"):
    router.add_api_route(f"/studio/{{market}}/staff/users/{{name}}/{_action}",
                         _user_action(_action), methods=["POST"])


# ---- tokens ---------------------------------------------------------------------------


@router.post("/studio/{market}/staff/tokens")
async def create_token(request: Request, market: str) -> Response:
    checked = await posted(request, market, "staff")
    if isinstance(checked, Response):
        return checked
    page, form = checked
    errors: dict[str, str] = {}
    name = first(form, "name").strip()
    role = first(form, "role")
    token_market = _market_choice(page, first(form, "market", page.market))
    expires_text = first(form, "expires", "30d").strip()
    if not 1 <= len(name) <= 120 or not name.isprintable():
        errors["token.name"] = "Name the token (1-120 characters), e.g. 'qlab booth'."
    if role not in TOKEN_ROLES:
        errors["token.role"] = "Choose admin, curator or performer (growers sign in)."
    if token_market is None:
        errors["token.market"] = "Choose this market or every market."
    lifetime = None
    if expires_text != "never":
        lifetime = _check(errors, "token.expires", lambda: accounts.parse_duration(expires_text))
    engine = services(request).engine
    if not errors and token_market is not None:
        try:
            secret, row = await db.call(
                engine, accounts.create_token, engine, name, [role],
                [token_market], lifetime, actor=page.principal.actor)
        except accounts.AccountError as exc:
            errors["token.name"] = str(exc)
    if errors:
        return await _render(page, 400, errors=errors, forms={"token": {
            "name": name, "role": role, "market": token_market or page.market,
            "expires": expires_text}})
    return await _render(page, 201, notice=f"Created token {row.name!r} ({role}).",
                         secret={"kind": "token", "for": row.name, "value": secret})


@router.post("/studio/{market}/staff/tokens/{token_id}/revoke")
async def revoke_token(request: Request, market: str, token_id: int) -> Response:
    checked = await posted(request, market, "staff")
    if isinstance(checked, Response):
        return checked
    page, _ = checked
    try:
        app = services(request)
        row = await db.call(app.engine, accounts.revoke_token, app.engine, str(token_id),
                            actor=page.principal.actor, cache=app.token_cache)
    except accounts.AccountError as exc:
        return await _render(page, 404, errors={f"tokenrow.{token_id}": str(exc)})
    return _back(page, f"Revoked token {row.name!r}: it no longer works.")
