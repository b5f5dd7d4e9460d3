"""The visitors' form to send a story or recipe (#21): /m/<market>/send.

A plain HTML form (works without JavaScript), shown on the market, story and recipe pages
and on its own page. Anonymous; the same validation (stories.submissions.SubmissionIn),
moderation rules and per-address limit (the services' submission_limiter) as POST
/api/v1/submissions. A honeypot field (`website`, hidden from people) catches form-filling
bots: they get the thank-you page and nothing is stored. Errors are shown next to their
fields; the thank-you page says what happens next."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, Response

from holobazaar import db
from holobazaar.accounts.addresses import client_address, limit_key
from holobazaar.stories.submissions import SubmissionIn, draft, submit
from holobazaar.web.pages import templates
from holobazaar.web.services import services
from holobazaar.web.studio.shell import first, read_form

router = APIRouter(include_in_schema=False)
HONEYPOT = "website"
FIELDS = ("kind", "title", "author", "body", "ingredients", "instructions")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        key = str(err["loc"][0]) if err["loc"] else "form"
        msg = err["msg"].removeprefix("Value error, ")
        out.setdefault(key, msg[:1].upper() + msg[1:] + ".")
    return out


def _market(request: Request, market: str) -> Any:
    content = services(request).scenes.market(market)
    return content.market.market if content is not None else None


def _form_page(request: Request, info: Any, values: dict[str, str],
               errors: dict[str, str], status: int = 200) -> Response:
    return templates.TemplateResponse(request, "send.html", {
        "market": info, "values": values, "errors": errors}, status_code=status,
        headers={"Cache-Control": "no-store"})


@router.get("/m/{market}/send", response_class=HTMLResponse)
async def send_form(request: Request, market: str) -> Response:
    info = _market(request, market)
    if info is None:
        return templates.TemplateResponse(request, "not_found.html", {
            "message": "There is no such market.", "market": None}, status_code=404)
    kind = request.query_params.get("kind", "story")
    return _form_page(request, info, {"kind": kind if kind in ("story", "recipe")
                                      else "story"}, {})


@router.post("/m/{market}/send", response_class=HTMLResponse)
async def send(request: Request, market: str) -> Response:
    info = _market(request, market)
    if info is None:
        return templates.TemplateResponse(request, "not_found.html", {
            "message": "There is no such market.", "market": None}, status_code=404)
    form = await read_form(request)
    if form is None:
        return _form_page(request, info, {"kind": "story"}, {
            "form": "The form could not be read: send at most 64 KiB of text."}, 400)
    values = {k: first(form, k) for k in FIELDS}
    if first(form, HONEYPOT):  # a bot filled the hidden field: thank it, store nothing
        return templates.TemplateResponse(request, "send_thanks.html", {
            "market": info, "kind": values["kind"], "held": None}, status_code=200)
    kind = values["kind"] if values["kind"] in ("story", "recipe") else ""
    payload: dict[str, Any] = {"kind": kind, "market": market, "title": values["title"],
                               "author": values["author"], "body": values["body"]}
    if kind == "recipe":
        payload["ingredients"] = _lines(values["ingredients"])
        payload["instructions"] = _lines(values["instructions"])
    errors: dict[str, str] = {}
    try:
        data = SubmissionIn.model_validate(payload)
        doc = draft(data)
    except ValidationError as exc:
        errors = _errors(exc)
    if kind == "recipe" and not payload["ingredients"]:
        errors.setdefault("ingredients", "List at least one ingredient, one a line.")
    if kind == "story" and not values["body"].strip():
        errors.setdefault("body", "Tell the story: this field is empty.")
    if errors:
        if "kind" in errors:
            errors["kind"] = "Choose story or recipe."
        return _form_page(request, info, values, errors, 422)
    wait = await services(request).submission_limiter.take(
        limit_key(client_address(request)))
    if wait:
        seconds = int(wait) + 1
        return _form_page(request, info, values, {
            "form": f"You have sent several things in a short time. Please wait {seconds} "
                    "seconds and send again: your text is still here."}, 429)
    engine = services(request).engine
    saved, reason = await db.call(engine, submit, engine, data, doc)
    return templates.TemplateResponse(request, "send_thanks.html", {
        "market": info, "kind": saved.kind, "held": reason}, status_code=200,
        headers={"Cache-Control": "no-store"})
