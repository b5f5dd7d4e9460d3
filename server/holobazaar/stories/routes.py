"""Stories and recipes API. Reading published content, search and "cook from what's here"
are public; curators write under /api/v1/markets/{market}/ (require_role("curator")); the
public can submit a story or recipe to the moderation queue (rate-limited per client).

A change that touches published content reloads the bindings' cache and recomposes the
market's displays, so subscribed clients receive patches through the hub."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine
from starlette.responses import Response

from holobazaar import db, jsonlimits
from holobazaar.accounts.addresses import client_address, limit_key
from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal
from holobazaar.cluster.dependencies import get_cluster
from holobazaar.db import as_utc
from holobazaar.dependencies import get_settings
from holobazaar.scenes.dependencies import get_scenes, market_or_404
from holobazaar.stories import jsonld, scheduled, service
from holobazaar.stories import search as search_index
from holobazaar.stories.bindings import rank_recipes
from holobazaar.stories.dependencies import (
    EngineDep,
    Scenes,
    Stories,
    SubmissionLimiter,
    get_stories,
)
from holobazaar.stories.schema import DOC_TYPES, RecipeDoc, Status, StoryDoc
from holobazaar.stories.submissions import SubmissionIn, draft, submit
from holobazaar.validation import MAX_DB_INT, error_details


class StoryRoute(APIRoute):
    """The story routes' one mapping of the repository's errors to HTTP: NotFound is a
    404, Conflict a 409, wherever in the route they are raised (the database work itself
    runs through run_in_threadpool, as everywhere in the server)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def mapped(request: Request) -> Response:
            try:
                return await handler(request)
            except service.NotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except service.Conflict as exc:
                raise HTTPException(409, str(exc)) from None

        return mapped


router = APIRouter(tags=["stories"], route_class=StoryRoute)
KIND = {"stories": "story", "recipes": "recipe"}
JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "A story or recipe document (docs/stories.md); "
    "`market` defaults to the path's market."}}}}}
curator = require_role("curator")
# Growers write their own farm's stories and recipes (drafts, sent for review); curators
# review and publish. `_farm_guard` keeps a grower to documents about their farm only.
writer = require_role("curator", "grower")
GROWER_STATUSES = ("draft", "review")


def _is_grower(principal: Principal, market: str) -> bool:
    return not principal.allows("curator", market)


def _farm_guard(principal: Principal, market: str, producers: list[str],
                status: str | None = None) -> None:
    """403 unless a curator, or a grower whose farm is the document's only producer (and,
    with `status`, the document is still a draft or in review: published text is the
    curators')."""
    if not _is_grower(principal, market):
        return
    farm = principal.farm_of(market)
    if farm is None or list(producers) != [farm]:
        raise HTTPException(403, "a grower works only on their own farm's documents "
                                 "(producers: [their farm])")
    if status is not None and status not in GROWER_STATUSES:
        raise HTTPException(403, f"this document is {status}: a curator changes it now")


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    results: list[dict[str, Any]]


class DocumentOut(BaseModel):
    kind: Literal["story", "recipe"]
    slug: str
    market: str
    status: Status
    origin: str
    moderation: str | None
    moderation_reason: str | None
    revision: int
    created_at: str
    updated_at: str
    published_at: str | None
    document: Annotated[StoryDoc | RecipeDoc, Field(discriminator="kind")]
    html: str | None = Field(None, description="The body as sanitized HTML.")
    scheduled: list[dict[str, Any]] | None = Field(None, description=(
        "After an edit: pending scheduled publishes that will publish the reviewed "
        "revision rather than this one, each with a `message` asking whether to "
        "reschedule (docs/stories.md, Scheduled publishing)."))


def body_schema(kind: str) -> dict[str, Any]:
    """The request body in the OpenAPI document: the document model (the route reads and
    size-checks the body itself, so it is not declared as a parameter)."""
    model = "StoryDoc" if kind == "story" else "RecipeDoc"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{model}"}}}}}


class StatusChange(BaseModel):
    status: Status


class Decision(BaseModel):
    reason: str | None = Field(None, max_length=300)


async def read_json(request: Request) -> Any:
    """The request body as JSON, refused when larger than story_max_bytes."""
    limit = get_settings(request).story_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body is larger than {limit} bytes (story_max_bytes)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is larger than {limit} bytes (story_max_bytes)")
    try:
        return jsonlimits.loads(body)
    except jsonlimits.JSONInputError as exc:
        raise HTTPException(400, f"body is not JSON: {exc.message}") from None


def _invalid(exc: ValidationError) -> HTTPException:
    return HTTPException(422, error_details(exc.errors(include_url=False)))


def four_eyes(request: Request, market: str) -> bool:
    """The market's `stories_four_eyes` rule: the curator who publishes is not the one who
    sent the document for review or edited it since (409 otherwise)."""
    content = get_scenes(request).market(market)
    return bool(content is not None and content.market.stories_four_eyes)


async def content_changed(request: Request, market: str) -> None:
    """Published content changed: reload the displays' view of it and recompose; the
    other nodes reload their copy too (web/assembly.py's wire_cluster_content)."""
    await get_stories(request).reload(market)
    await get_scenes(request).refresh(market)
    await get_cluster(request).notify("stories", {"market": market})


# ---- public reading ------------------------------------------------------------------

@router.get("/api/v1/search", summary="Search published stories and recipes")
async def search(engine: EngineDep, q: Annotated[str, Query(min_length=1, max_length=200)],
                 market: str | None = None, kind: Literal["story", "recipe"] | None = None,
                 tag: str | None = None, producer: str | None = None,
                 diet: str | None = None, language: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=100)] = 20,
                 offset: Annotated[int, Query(ge=0, le=10_000)] = 0) -> dict[str, Any]:
    filters = search_index.Filters(market, kind, tag, producer, diet, language)
    try:
        hits = await db.call(engine, search_index.search, engine, q, filters,
                             limit=limit, offset=offset)
    except ValueError as exc:  # SearchError, unknown diet
        raise HTTPException(422, str(exc)) from None
    return {"q": q, "limit": limit, "offset": offset, "results": [h.as_json() for h in hits]}


async def _published(engine: Engine, kind: str, slug: str) -> service.Saved:
    saved = await db.call(engine, service.get, engine, kind, slug)
    if saved.status != "published":
        raise HTTPException(404, f"no published {kind} {slug!r}")
    return saved


@router.get("/api/v1/recipes/{slug}.jsonld", summary="A published recipe as schema.org JSON-LD",
            response_class=Response)
async def recipe_jsonld(engine: EngineDep, slug: str) -> Response:
    saved = await _published(engine, "recipe", slug)
    assert isinstance(saved.doc, RecipeDoc)
    return Response(jsonld.dumps(jsonld.from_document(saved.doc)),
                    media_type="application/ld+json")


def _public_routes(collection: str, kind: str) -> None:
    @router.get(f"/api/v1/{collection}", summary=f"List published {collection}")
    async def list_published(engine: EngineDep, market: str | None = None,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
                             ) -> Page:
        total, rows = await db.call(engine, service.list_documents, engine, kind,
                                    market=market, statuses=["published"], limit=limit,
                                    offset=offset)
        return Page(total=total, limit=limit, offset=offset,
                    results=[r.as_json(with_html=False) for r in rows])

    @router.get(f"/api/v1/{collection}/{{slug}}", summary=f"A published {kind}",
                response_model=DocumentOut)
    async def get_published(engine: EngineDep, slug: str) -> dict[str, Any]:
        return (await _published(engine, kind, slug)).as_json()


@router.get("/api/v1/markets/{market}/recipes/in-stock",
            summary="Cook from what's here: recipes whose ingredients are in stock now")
async def recipes_in_stock(scenes: Scenes, bindings: Stories, market: str,
                           display: str | None = None,
                           limit: Annotated[int, Query(ge=1, le=20)] = 3) -> dict[str, Any]:
    found = market_or_404(scenes, market)
    wanted = None
    if display is not None:
        shown = found.displays.get(display)
        if shown is None:
            raise HTTPException(404, f"no display {display!r} in market {market!r}")
        wanted = set(shown.items)
    if market not in bindings.markets:
        await bindings.reload(market)
    recipes = bindings.markets[market].recipes
    items = scenes.items.get(market, {})
    return {"market": market, "display": display,
            "results": rank_recipes(recipes, items, wanted=wanted, limit=limit)}


@router.get("/api/v1/markets/{market}/producers", summary="The market's producers")
async def producers(engine: EngineDep, scenes: Scenes, market: str) -> list[dict[str, Any]]:
    market_or_404(scenes, market)
    rows = await db.call(engine, service.producers, engine, market)
    return [r.model_dump() for r in rows]


@router.post("/api/v1/submissions", status_code=202, openapi_extra=JSON_BODY,
             summary="A visitor's story or recipe, for the moderation queue (no account)")
async def submission(request: Request, engine: EngineDep, scenes: Scenes,
                     limiter: SubmissionLimiter) -> dict[str, Any]:
    payload = await read_json(request)
    try:
        data = SubmissionIn.model_validate(payload)
        doc = draft(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    market_or_404(scenes, data.market)
    client = limit_key(client_address(request))
    wait = await limiter.take(client)
    if wait:
        raise HTTPException(429, f"too many submissions from this address: try again in "
                            f"{int(wait) + 1} s", headers={"Retry-After": str(int(wait) + 1)})
    saved, reason = await db.call(engine, submit, engine, data, doc)
    return {"kind": saved.kind, "slug": saved.slug, "moderation": saved.moderation,
            "reason": reason}


# ---- curators ------------------------------------------------------------------------

def _document(payload: Any, kind: str, market: str, slug: str | None = None):
    if not isinstance(payload, dict):
        raise HTTPException(422, "body must be a JSON object (a story or recipe document)")
    data = {"market": market, **payload, "kind": payload.get("kind", kind)}
    if slug is not None:
        data.setdefault("slug", slug)
        if data["slug"] != slug:
            raise HTTPException(422, f"slug: the body says {data['slug']!r}, the path {slug!r}")
    if data["kind"] != kind:
        raise HTTPException(422, f"kind: {data['kind']!r} does not belong in {kind} routes")
    if data["market"] != market:
        raise HTTPException(422, f"market: the body says {data['market']!r}, the path "
                            f"{market!r}")
    try:
        return DOC_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _curator_routes(collection: str, kind: str) -> None:
    # Fixed paths per collection (not a {collection} parameter) so that they never
    # shadow other domains' routes under /api/v1/markets/{market}/.
    prefix = f"/api/v1/markets/{{market}}/{collection}"

    @router.get(prefix, summary="All stories or recipes "
                "of a market, any status (curators)")
    async def list_all(engine: EngineDep, market: str,
                       status: Status | None = None,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
                       principal: Principal = Depends(writer)) -> Page:
        if _is_grower(principal, market):  # their farm's documents only
            farm = principal.farm_of(market)
            _, found = await db.call(engine, service.list_documents, engine, kind,
                                     market=market, statuses=[status] if status else None,
                                     limit=500)
            mine = [r for r in found if farm is not None and r.doc.producers == [farm]]
            return Page(total=len(mine), limit=limit, offset=offset,
                        results=[r.as_json(with_html=False)
                                 for r in mine[offset:offset + limit]])
        total, rows = await db.call(engine, service.list_documents, engine, kind,
                                    market=market, statuses=[status] if status else None,
                                    limit=limit, offset=offset)
        return Page(total=total, limit=limit, offset=offset,
                    results=[r.as_json(with_html=False) for r in rows])


    @router.post(prefix, status_code=201, openapi_extra=body_schema(kind),
                 response_model=DocumentOut,
                 summary="Create a story or recipe (as a draft unless status says review)")
    async def create(request: Request, engine: EngineDep, scenes: Scenes, market: str,
                     principal: Principal = Depends(writer)) -> dict[str, Any]:
        market_or_404(scenes, market)
        doc = _document(await read_json(request), kind, market)
        if _is_grower(principal, market) and not doc.producers:
            doc = doc.model_copy(update={"producers": [principal.farm_of(market) or ""]})
        _farm_guard(principal, market, doc.producers, doc.status)
        if doc.status not in ("draft", "review"):
            raise HTTPException(422, "status: a new document starts as draft or review; "
                                "publish it with POST .../status")
        if await db.call(engine, service.slug_taken, engine, doc.slug):
            raise HTTPException(409, f"slug {doc.slug!r} is taken: update it with PUT")
        saved = await db.call(engine, service.save, engine, doc, principal.actor, action="create")
        return saved.as_json()


    @router.get(prefix + "/{slug}",
                summary="A story or recipe in any status (curators)")
    async def get_any(engine: EngineDep, market: str, slug: str,
                      principal: Principal = Depends(writer)) -> dict[str, Any]:
        found = await db.call(engine, service.get, engine, kind, slug, market)
        _farm_guard(principal, market, found.doc.producers)
        return found.as_json()


    @router.put(prefix + "/{slug}", openapi_extra=body_schema(kind), response_model=DocumentOut,
                summary="Edit a story or recipe (a new revision; the status stays)")
    async def update(request: Request, engine: EngineDep, market: str, slug: str,
                     principal: Principal = Depends(writer)) -> dict[str, Any]:
        current = await db.call(engine, service.get, engine, kind, slug, market)
        _farm_guard(principal, market, current.doc.producers, current.status)
        doc = _document(await read_json(request), kind, market, slug)
        _farm_guard(principal, market, doc.producers)
        saved = await db.call(engine, service.save, engine, doc, principal.actor, action="edit",
                              origin=current.origin, keep_status=True)
        if saved.status == "published" and saved.changed:
            await content_changed(request, market)
        out = saved.as_json()
        if saved.changed and (notice := await db.call(
                engine, scheduled.reschedule_notice, engine, kind, slug, saved.revision)):
            out["scheduled"] = notice
        return out


    @router.post(prefix + "/{slug}/status",
                 summary="Move along the lifecycle: draft, review, published, archived",
                 description="409 when the move is not allowed from the current status, "
                 "or when the market has `stories_four_eyes` on and the caller sent the "
                 "document to review or edited it since (another curator publishes it).")
    async def change_status(request: Request, engine: EngineDep, market: str, slug: str,
                            change: StatusChange,
                            principal: Principal = Depends(writer)) -> dict[str, Any]:
        before = await db.call(engine, service.get, engine, kind, slug, market)
        # A grower sends their draft for review (or takes it back); publishing is curators'.
        _farm_guard(principal, market, before.doc.producers, before.status)
        _farm_guard(principal, market, before.doc.producers, change.status)
        saved = await db.call(engine, service.transition, engine, kind, slug, market,
                              change.status, principal.actor,
                              distinct_reviewer=four_eyes(request, market))
        if "published" in (before.status, saved.status):
            await content_changed(request, market)
        return saved.as_json()


    @router.post(prefix + "/{slug}/publish",
                 summary="Publish a document that is in review",
                 description="409 under the market's `stories_four_eyes` rule when the caller "
                 "sent the document to review or edited it since.")
    async def publish(request: Request, engine: EngineDep, market: str, slug: str,
                      principal: Principal = Depends(curator)) -> dict[str, Any]:
        saved = await db.call(engine, service.transition, engine, kind, slug, market,
                              "published", principal.actor,
                              distinct_reviewer=four_eyes(request, market))
        await content_changed(request, market)
        return saved.as_json()


    @router.get(prefix + "/{slug}/revisions",
                summary="Every saved revision: who, when, what changed, the full snapshot")
    async def list_revisions(engine: EngineDep, market: str, slug: str,
                             principal: Principal = Depends(writer)) -> list[dict[str, Any]]:
        found = await db.call(engine, service.get, engine, kind, slug, market)
        _farm_guard(principal, market, found.doc.producers)
        rows = await db.call(engine, service.revisions, engine, kind, slug, market)
        return [{"number": r.number, "actor": r.actor, "at": as_utc(r.at).isoformat(),
                 "action": r.action, "changes": r.changes, "snapshot": r.snapshot} for r in rows]


    @router.post(prefix + "/{slug}/revisions/{number}/restore",
                 summary="Save an old revision's content as the newest revision")
    async def restore_revision(request: Request, engine: EngineDep, market: str, slug: str,
                               number: Annotated[int, Path(ge=0, le=MAX_DB_INT)],
                               principal: Principal = Depends(curator),
                               ) -> dict[str, Any]:
        saved = await db.call(engine, service.restore, engine, kind, slug, market,
                              number, principal.actor)
        if saved.status == "published":
            await content_changed(request, market)
        return saved.as_json()


@router.post("/api/v1/markets/{market}/recipes-jsonld", status_code=201,
             openapi_extra=JSON_BODY, summary="Import schema.org Recipe JSON-LD as drafts "
             "(a Recipe, an array or an @graph)")
async def import_jsonld(request: Request, engine: EngineDep, scenes: Scenes, market: str,
                        principal: Principal = Depends(curator)) -> dict[str, Any]:
    market_or_404(scenes, market)
    payload = await read_json(request)
    items = scenes.items.get(market, {})
    try:
        docs = jsonld.parse(json.dumps(payload), market, items)
    except jsonld.JsonLdError as exc:
        raise HTTPException(422, str(exc)) from None
    out = []
    for doc in docs:
        current = None
        if await db.call(engine, service.slug_taken, engine, doc.slug):
            current = await db.call(engine, service.get, engine, "recipe", doc.slug, market)
        saved = await db.call(engine, service.save, engine, doc, principal.actor,
                              action="import", keep_status=current is not None)
        out.append({"slug": saved.slug, "revision": saved.revision, "changed": saved.changed})
        if saved.status == "published" and saved.changed:
            await content_changed(request, market)
    return {"imported": out}


@router.get("/api/v1/markets/{market}/submissions",
            summary="The moderation queue: submissions pending or held")
async def moderation_queue(engine: EngineDep, market: str,
                           _: Principal = Depends(curator)) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind in ("story", "recipe"):
        for state in ("pending", "held"):
            _total, rows = await db.call(engine, service.list_documents, engine, kind,
                                         market=market, moderation=state, limit=200)
            out.extend(r.as_json() for r in rows)
    return sorted(out, key=lambda r: r["created_at"])


@router.post("/api/v1/markets/{market}/submissions/{kind}/{slug}/{decision}",
             summary="Approve (to review) or reject (archived) a submission")
async def decide(engine: EngineDep, market: str, kind: Literal["story", "recipe"],
                 slug: str,
                 decision: Literal["approve", "reject"], body: Decision | None = None,
                 principal: Principal = Depends(curator)) -> dict[str, Any]:
    saved = await db.call(engine, service.moderate, engine, kind, slug, market,
                          decision, principal.actor, body.reason if body else None)
    return saved.as_json()


# Public reads first: /api/v1/recipes/{slug}.jsonld is declared above, before {slug}.
for _collection, _kind in KIND.items():
    _public_routes(_collection, _kind)
    _curator_routes(_collection, _kind)
