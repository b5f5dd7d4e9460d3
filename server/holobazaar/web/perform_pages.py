"""The performer console: `/perform` lists the shows a signed-in performer may run,
`/perform/<market>/<show>` is the console (cue list, GO, pause, stop, panic; see
docs/shows.md). It calls the show API with the session cookie and the CSRF header."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from holobazaar import db
from holobazaar.accounts import service as accounts
from holobazaar.accounts.dependencies import session_cookie
from holobazaar.accounts.models import Principal
from holobazaar.shows.runner import ShowError
from holobazaar.shows.starts import console_state
from holobazaar.web.pages import templates
from holobazaar.web.services import services

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


async def _performer(request: Request) -> Principal | None:
    cookie = session_cookie(request)
    if cookie is None:
        return None
    engine = services(request).engine
    return await db.call(engine, accounts.principal_for_session, engine, cookie)


def _login(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={path}", status_code=303)


@router.get("/perform", response_class=HTMLResponse)
async def perform_index(request: Request) -> Response:
    principal = await _performer(request)
    if principal is None:
        return _login("/perform")
    scenes = services(request).scenes
    shows = []
    for market in scenes.content.markets.values() if scenes.content else []:
        if not principal.allows("performer", market.id):
            continue
        for show in sorted(market.shows.values(), key=lambda s: s.id):
            shows.append({"market": market.market.market, "show": show})
    return templates.TemplateResponse(request, "perform_index.html", {"shows": shows},
                                      headers=NO_STORE)


@router.get("/perform/{market}/{show}", response_class=HTMLResponse)
async def perform_console(request: Request, market: str, show: str) -> Response:
    principal = await _performer(request)
    if principal is None:
        return _login(f"/perform/{market}/{show}")
    if not principal.allows("performer", market):
        return templates.TemplateResponse(
            request, "not_found.html", {"message": "You are not a performer of this market.",
                                        "market": None}, status_code=403, headers=NO_STORE)
    try:
        runner = services(request).shows.runner(market, show)
    except ShowError as exc:
        return templates.TemplateResponse(request, "not_found.html",
                                          {"message": exc.message, "market": None},
                                          status_code=exc.status, headers=NO_STORE)
    state = await console_state(services(request).shows, runner)
    boot = {"market": market, "show": show, "api": f"/api/v1/shows/{market}/{show}",
            "state": state}
    return templates.TemplateResponse(request, "perform.html", {
        "title": runner.show.title, "boot": boot, "csrf": principal.session_csrf,
        "next_start": state["next_start"],
        "entry": services(request).client.entry("src/perform.js"),
    }, headers=NO_STORE)
