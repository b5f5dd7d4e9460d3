"""The studio's shell: who may open a staff page of a market, the navigation they see, and
the signed-in form helpers every studio page shares.

Pages answer a browser: not signed in -> the sign-in page, then back; signed in without the
role for this market -> a 403 page; an unknown market -> a 404 page. Writes from pages go
either through the JSON API (session cookie + the `X-CSRF-Token` header, as `fetch` sends
it) or through urlencoded forms carrying the session's CSRF token in a `csrf` field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from holobazaar import db
from holobazaar.accounts import service as accounts
from holobazaar.accounts.dependencies import CSRF_HEADER, session_cookie
from holobazaar.accounts.models import Principal
from holobazaar.web.i18n import templates as page_templates
from holobazaar.web.services import services

templates = page_templates()  # web/i18n.py: gettext, lang and dir
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200

STAFF = ("curator", "admin")


@dataclass(frozen=True)
class Section:
    """One entry of the studio's navigation."""

    key: str
    title: str
    path: str  # under /studio/<market>
    roles: tuple[str, ...]


# The order is the navigation's order. A page registers under its key (`section=`).
SECTIONS: tuple[Section, ...] = (
    Section("displays", "Displays", "", STAFF),
    Section("inventory", "Inventory", "/inventory", (*STAFF, "grower")),
    Section("truth", "Holds & mismatches", "/truth", STAFF),
    Section("stories", "Stories & recipes", "/stories", (*STAFF, "grower")),
    Section("moderation", "Moderation", "/moderation", STAFF),
    Section("shows", "Shows", "/shows", (*STAFF, "performer")),
    Section("schedule", "Schedule", "/schedule", STAFF),
    Section("staff", "Staff", "/staff", ("admin",)),
    # A grower's own page (their farm); admins open it for any farm of the market.
    Section("grower", "My farm", "/grower", ("grower",)),
)


@dataclass
class StudioPage:
    """A signed-in staff member on one market's studio page."""

    request: Request
    principal: Principal
    market: str
    market_name: str
    section: str
    nav: list[tuple[Section, str]] = field(default_factory=list)  # (section, href)

    @property
    def csrf(self) -> str:
        return self.principal.session_csrf or ""

    def allows(self, role: str) -> bool:
        return self.principal.allows(role, self.market)

    def render(self, template: str, context: dict[str, Any] | None = None,
               status: int = 200) -> Response:
        return templates.TemplateResponse(self.request, template, {
            "page": self, "csrf": self.csrf, "market": self.market,
            "market_name": self.market_name, "user": self.principal.name,
            "section": self.section, "nav": self.nav, "csrf_header": CSRF_HEADER,
            **(context or {})}, status_code=status, headers=NO_STORE)


def _problem(request: Request, status: int, title: str, message: str) -> Response:
    return templates.TemplateResponse(request, "studio/problem.html",
                                      {"title": title, "message": message},
                                      status_code=status, headers=NO_STORE)


async def signed_in(request: Request) -> Principal | None:
    cookie = session_cookie(request)
    if cookie is None:
        return None
    engine = services(request).engine
    return await db.call(engine, accounts.principal_for_session, engine, cookie)


def market_name(request: Request, market: str) -> str | None:
    content = services(request).scenes.market(market)
    return content.market.market.name if content is not None else None


async def open_page(request: Request, market: str, section: str,
                    roles: tuple[str, ...] | None = None) -> StudioPage | Response:
    """The studio page for `section` of `market`, or the response to send instead."""
    known = {s.key: s for s in SECTIONS}
    allowed_roles = roles or known[section].roles
    principal = await signed_in(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303,
                                headers=NO_STORE)
    if principal.must_change_password:  # a temporary password: their own one first
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/account/password?{urlencode({'next': target})}",
                                status_code=303, headers=NO_STORE)
    name = market_name(request, market)
    if name is None:
        return _problem(request, 404, "No such market",
                        f"There is no market {market!r} on this server.")
    if (section == "displays" and not principal.allows_any(allowed_roles, market)
            and principal.allows("grower", market)):
        # A grower's studio is their farm's page: /studio/<m> leads there.
        return RedirectResponse(f"/studio/{market}/grower", status_code=303, headers=NO_STORE)
    if (section == "displays" and not principal.allows_any(allowed_roles, market)
            and principal.allows("performer", market)):
        # A performer's studio is the market's shows: /studio/<m> leads there.
        return RedirectResponse(f"/studio/{market}/shows", status_code=303, headers=NO_STORE)
    if not principal.allows_any(allowed_roles, market):
        return _problem(request, 403, "Not yours to open",
                        f"Your account has no {' or '.join(allowed_roles)} role for "
                        f"{name}. Ask an admin of this market.")
    nav = [(s, f"/studio/{market}{s.path}") for s in SECTIONS
           if principal.allows_any(s.roles, market)]
    return StudioPage(request, principal, market, name, section, nav)


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES,
                    max_fields: int = MAX_FORM_FIELDS) -> dict[str, list[str]] | None:
    """An urlencoded form (every value per field), None when too large or not a form."""
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True,
                        max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        return None


async def submitted_form(page: StudioPage, max_bytes: int = MAX_FORM_BYTES,
                         max_fields: int = MAX_FORM_FIELDS) -> dict[str, list[str]] | Response:
    """The page's POSTed form after its CSRF check, or the 400/403 response to send."""
    form = await read_form(page.request, max_bytes, max_fields)
    if form is None:
        return _problem(page.request, 400, "Form not readable",
                        f"Send the page's form (at most {max_bytes // 1024} KiB).")
    if not accounts.csrf_matches(page.principal.session_csrf, (form.get("csrf") or [""])[0]):
        return _problem(page.request, 403, "Form expired",
                        "This form is from an older session; reload the page and try again.")
    return form


async def posted(request: Request, market: str, section: str,
                 roles: tuple[str, ...] | None = None, max_bytes: int = MAX_FORM_BYTES,
                 max_fields: int = MAX_FORM_FIELDS
                 ) -> tuple[StudioPage, dict[str, list[str]]] | Response:
    """A POST to a studio page: the page (access checked as for `open_page`) and its form
    after the CSRF check, or the response to send instead."""
    page = await open_page(request, market, section, roles)
    if isinstance(page, Response):
        return page
    form = await submitted_form(page, max_bytes, max_fields)
    if isinstance(form, Response):
        return form
    return page, form


def field_errors(exc: ValidationError, friendly: dict[str, str] | None = None,
                 aliases: dict[str, str] | None = None) -> dict[str, str]:
    """A model's refusal as one message per form field (the first error of each): the
    field's friendly message when there is one, else pydantic's; `aliases` maps a model
    field to the form field that holds it; an unknown field is the form's error."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        name = (aliases or {}).get(str(loc[0]), str(loc[0])) if loc else "form"
        if error["type"] == "extra_forbidden":
            errors.setdefault("form", f"Unknown field {name}.")
        elif name not in errors:
            errors[name] = ("This field is required." if error["type"] == "missing" else
                            (friendly or {}).get(name, error["msg"]))
    return errors


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def studio_markets(request: Request, principal: Principal) -> list[tuple[str, str]]:
    """(market id, name) of every market this principal has some studio section in."""
    content = services(request).scenes.content
    markets = sorted(content.markets.values() if content else [], key=lambda m: m.id)
    return [(m.id, m.market.market.name) for m in markets
            if any(principal.allows_any(s.roles, m.id) for s in SECTIONS)]
