"""The story and recipe repository as plain functions over the database: save (every save
is a revision), lifecycle transitions, revisions and restore, moderation, producers and
the search index rows. Nothing here talks to clients: routes call
`SceneService.refresh(market)` (through the bindings provider) after a change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from holobazaar.audit import service as audit
from holobazaar.db import as_utc, session_scope
from holobazaar.stories.markup import markdown_text, render_markdown
from holobazaar.stories.models import (
    ContentRevision,
    DocumentRow,
    Producer,
    Recipe,
    RecipeIngredient,
    SearchDoc,
    Story,
    StoryBeat,
)
from holobazaar.stories.schema import Document, RecipeDoc, StoryDoc, parse_document

_PG_LOCK_KEY = 0x57_0123
ROWS: dict[str, type[Story] | type[Recipe]] = {"story": Story, "recipe": Recipe}
# The lifecycle: draft -> review -> published -> archived; review can go back to draft
# (changes requested) and an archived document can be reopened as a draft.
TRANSITIONS: dict[str, set[str]] = {
    "draft": {"review", "archived"},
    "review": {"draft", "published", "archived"},
    "published": {"archived"},
    "archived": {"draft"},
}


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    """The request cannot apply to the document as it is (wrong kind/market/status)."""


@dataclass(frozen=True)
class Saved:
    kind: str
    slug: str
    market: str
    status: str
    origin: str
    moderation: str | None
    moderation_reason: str | None
    revision: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    doc: Document
    changed: bool = True

    def as_json(self, with_html: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "slug": self.slug, "market": self.market,
            "status": self.status, "origin": self.origin, "moderation": self.moderation,
            "moderation_reason": self.moderation_reason, "revision": self.revision,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "document": self.doc.model_dump(mode="json"),
        }
        if with_html:
            out["html"] = render_markdown(self.doc.body)
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _saved(kind: str, row: DocumentRow, changed: bool = True) -> Saved:
    return Saved(kind, row.slug, row.market, row.status, row.origin, row.moderation,
                 row.moderation_reason, row.revision, as_utc(row.created_at),
                 as_utc(row.updated_at), as_utc(row.published_at),
                 parse_document(row.doc), changed)


def _row(session: Session, kind: str, slug: str) -> DocumentRow | None:
    table = ROWS[kind]
    return session.exec(select(table).where(table.slug == slug)).first()


def _lock(session: Session) -> None:
    # Saves read the current revision number and add the next one: take the database's
    # write lock first so concurrent saves queue instead of colliding on the revision.
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE story SET id = id WHERE 0"))
    elif dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def _changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return sorted(k for k, v in new.items() if v not in (None, "", [], {}))
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def save(engine: Engine, doc: Document, actor: str, *, action: str = "save",
         origin: str = "curator", moderation: str | None = None,
         moderation_reason: str | None = None, keep_status: bool = False) -> Saved:
    """Create or update a document keyed by its slug; a save that changes nothing adds no
    revision (imports are idempotent). `keep_status` keeps the stored lifecycle status
    (API edits change status only through `transition`)."""
    kind = doc.kind
    with session_scope(engine) as session:
        _lock(session)
        for other in ROWS:
            if other != kind and _row(session, other, doc.slug) is not None:
                raise Conflict(f"slug {doc.slug!r} is already a {other}")
        row = _row(session, kind, doc.slug)
        if row is not None and row.market != doc.market:
            raise Conflict(f"{kind} {doc.slug!r} belongs to market {row.market!r}")
        if row is not None and keep_status:
            doc = doc.model_copy(update={"status": row.status})
        snapshot = doc.model_dump(mode="json")
        changes = _changes(row.doc if row else None, snapshot)
        now = _now()
        if row is not None and not changes:
            return _saved(kind, row, changed=False)
        if row is None:
            row = ROWS[kind](slug=doc.slug, market=doc.market, status=doc.status, origin=origin,
                             moderation=moderation, moderation_reason=moderation_reason,
                             title=doc.heading, language=doc.language, doc=snapshot,
                             revision=1, created_at=now, updated_at=now)
        else:
            row.revision += 1
            row.doc, row.updated_at = snapshot, now
            row.title, row.language, row.status = doc.heading, doc.language, doc.status
        if doc.status == "published" and row.published_at is None:
            row.published_at = now
        session.add(row)
        session.flush()
        _write_parts(session, row, doc)
        session.add(ContentRevision(kind=kind, slug=doc.slug, number=row.revision,
                                    actor=actor[:120], at=now, action=action[:32],
                                    changes=changes, snapshot=snapshot))
        _index(session, kind, row, doc)
        session.flush()
        return _saved(kind, row)


def _write_parts(session: Session, row: DocumentRow, doc: Document) -> None:
    assert row.id is not None
    if isinstance(doc, StoryDoc):
        session.execute(delete(StoryBeat).where(col(StoryBeat.story_id) == row.id))
        session.add_all(StoryBeat(story_id=row.id, position=i, text=b.text, media=b.media,
                                  model=b.model, duration=b.duration)
                        for i, b in enumerate(doc.beats))
    else:
        session.execute(delete(RecipeIngredient).where(
            col(RecipeIngredient.recipe_id) == row.id))
        session.add_all(RecipeIngredient(recipe_id=row.id, position=i, text=g.text, sku=g.sku)
                        for i, g in enumerate(doc.ingredients))


def _bar(values: Iterable[str]) -> str:
    return "|" + "|".join(values) + "|"


def search_fields(doc: Document) -> dict[str, str]:
    """The searchable text of a document: title, body (plain text), tags."""
    if isinstance(doc, StoryDoc):
        parts = [doc.summary, markdown_text(doc.body), *(b.text for b in doc.beats)]
        tags = list(doc.tags)
        diets: list[str] = []
    else:
        parts = [doc.description, *(g.text for g in doc.ingredients), *doc.instructions,
                 markdown_text(doc.body)]
        tags = [*doc.tags, *doc.keywords, doc.category or "", doc.cuisine or ""]
        diets = doc.diets
    return {"title": doc.heading, "body": "\n".join(p for p in parts if p),
            "tags": " ".join(t for t in tags if t), "tag_list": _bar(doc.tags),
            "producer_list": _bar(doc.producers), "diet_list": _bar(diets)}


def _index(session: Session, kind: str, row: DocumentRow, doc: Document) -> None:
    """Only published documents are searchable."""
    existing = session.exec(select(SearchDoc).where(
        SearchDoc.kind == kind, SearchDoc.slug == row.slug)).first()
    if row.status != "published":
        if existing is not None:
            session.delete(existing)
        return
    fields: dict[str, Any] = {**search_fields(doc), "market": row.market,
                              "language": row.language, "published_at": row.published_at}
    if existing is None:
        session.add(SearchDoc(kind=kind, slug=row.slug, **fields))
        return
    for key, value in fields.items():
        setattr(existing, key, value)
    session.add(existing)


def get(engine: Engine, kind: str, slug: str, market: str | None = None) -> Saved:
    with session_scope(engine) as session:
        row = _row(session, kind, slug)
        if row is None or (market is not None and row.market != market):
            raise NotFound(f"no {kind} {slug!r}" + (f" in market {market!r}" if market else ""))
        return _saved(kind, row)


def list_documents(engine: Engine, kind: str, *, market: str | None = None,
                   statuses: Sequence[str] | None = None, moderation: str | None = None,
                   limit: int = 50, offset: int = 0) -> tuple[int, list[Saved]]:
    table = ROWS[kind]
    query = select(table)
    if market is not None:
        query = query.where(table.market == market)
    if statuses:
        query = query.where(col(table.status).in_(list(statuses)))
    if moderation is not None:
        query = query.where(table.moderation == moderation)
    with session_scope(engine) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(query.order_by(col(table.updated_at).desc(), col(table.slug))
                            .limit(limit).offset(offset)).all()
        return int(total), [_saved(kind, row) for row in rows]


def published(engine: Engine, market: str) -> list[Saved]:
    """Every published story and recipe of a market (the bindings' cache)."""
    out: list[Saved] = []
    with session_scope(engine) as session:
        for kind, table in ROWS.items():
            rows = session.exec(select(table).where(table.market == market,
                                                    table.status == "published")).all()
            out.extend(_saved(kind, row) for row in rows)
    return out


def authors_in_review(engine: Engine, kind: str, slug: str) -> set[str]:
    """Who sent the document to review last, and who saved it since: the people the
    four-eyes rule keeps from publishing it themselves."""
    with session_scope(engine) as session:
        rows = session.exec(select(ContentRevision).where(
            ContentRevision.kind == kind, ContentRevision.slug == slug)
            .order_by(col(ContentRevision.number).desc())).all()
    out: set[str] = set()
    for row in rows:
        if row.action == "approve":  # a submission: its author is the visitor
            break
        if row.action == "review":
            out.add(row.actor)
            break
        if row.action in ("save", "submit") or row.action.startswith("restore:"):
            out.add(row.actor)
    return out


def transition(engine: Engine, kind: str, slug: str, market: str, to: str, actor: str,
               *, distinct_reviewer: bool = False) -> Saved:
    """Move a document along the lifecycle (a revision records who and when). With
    `distinct_reviewer` (the market's `stories_four_eyes`), whoever sent the document to
    review or edited it since cannot publish it: another curator does."""
    current = get(engine, kind, slug, market)
    if distinct_reviewer and to == "published" and current.status == "review":
        authors = authors_in_review(engine, kind, slug)
        if actor in authors:
            raise Conflict(f"{kind} {slug!r}: four-eyes is on for this market and you sent "
                           "it for review or edited it; another curator reviews and "
                           "publishes it")
    if to not in TRANSITIONS.get(current.status, set()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current.status, set()))) or "nothing"
        raise Conflict(f"{kind} {slug!r} is {current.status}: it can move to {allowed}, "
                       f"not {to}")
    if current.moderation in ("pending", "held") and to in ("review", "published"):
        raise Conflict(f"{kind} {slug!r} is a submission awaiting moderation: approve it first")
    doc = current.doc.model_copy(update={"status": to})
    saved = save(engine, doc, actor, action=to, origin=current.origin)
    with session_scope(engine) as session:
        audit.append(session, actor, f"{kind}.{to}", market, {"slug": slug,
                                                              "revision": saved.revision})
    return saved


def revisions(engine: Engine, kind: str, slug: str, market: str) -> list[ContentRevision]:
    get(engine, kind, slug, market)
    with session_scope(engine) as session:
        return list(session.exec(select(ContentRevision).where(
            ContentRevision.kind == kind, ContentRevision.slug == slug)
            .order_by(col(ContentRevision.number))).all())


def restore(engine: Engine, kind: str, slug: str, market: str, number: int,
            actor: str) -> Saved:
    """Save an old revision's content as the newest revision. The lifecycle status stays
    as it is now: restoring text never publishes or unpublishes by itself."""
    current = get(engine, kind, slug, market)
    with session_scope(engine) as session:
        old = session.exec(select(ContentRevision).where(
            ContentRevision.kind == kind, ContentRevision.slug == slug,
            ContentRevision.number == number)).first()
        if old is None:
            raise NotFound(f"{kind} {slug!r} has no revision {number}")
        snapshot = dict(old.snapshot)
    snapshot["status"] = current.status
    return save(engine, parse_document(snapshot), actor, action=f"restore:{number}",
                origin=current.origin)


def moderate(engine: Engine, kind: str, slug: str, market: str, decision: str, actor: str,
             reason: str | None = None) -> Saved:
    """A curator's decision on a submission: approve (it goes to review, ready to
    publish) or reject (archived, with the reason)."""
    current = get(engine, kind, slug, market)
    if current.origin != "submission":
        raise Conflict(f"{kind} {slug!r} is not a community submission")
    if current.moderation not in ("pending", "held"):
        raise Conflict(f"{kind} {slug!r} was already {current.moderation}")
    status = "review" if decision == "approve" else "archived"
    with session_scope(engine) as session:
        row = _row(session, kind, slug)
        assert row is not None
        row.moderation = "approved" if decision == "approve" else "rejected"
        row.moderation_reason = reason
        session.add(row)
    saved = save(engine, current.doc.model_copy(update={"status": status}), actor,
                 action=decision, origin="submission")
    with session_scope(engine) as session:
        audit.append(session, actor, f"{kind}.{decision}", market, {"slug": slug,
                                                                    "reason": reason or ""})
    return saved


def set_moderation(engine: Engine, kind: str, slug: str, moderation: str,
                   reason: str | None) -> None:
    with session_scope(engine) as session:
        row = _row(session, kind, slug)
        if row is None:
            raise NotFound(f"no {kind} {slug!r}")
        row.moderation, row.moderation_reason = moderation, reason
        session.add(row)


def slug_taken(engine: Engine, slug: str) -> bool:
    with session_scope(engine) as session:
        return any(_row(session, kind, slug) is not None for kind in ROWS)


def sync_producers(engine: Engine, market: str, farms: Iterable[Any]) -> None:
    """The market's farms (from its scene files) are its producers. Nodes starting together
    take turns (the write lock), so they do not both insert a new producer."""
    with session_scope(engine) as session:
        _lock(session)
        for farm in farms:
            row = (session.get(Producer, (market, farm.id))
                   or Producer(market=market, id=farm.id, name=farm.name))
            row.name, row.location = farm.name, farm.location or ""
            row.description = farm.description or ""
            session.add(row)


def producers(engine: Engine, market: str) -> list[Producer]:
    with session_scope(engine) as session:
        return list(session.exec(select(Producer).where(Producer.market == market)
                                 .order_by(col(Producer.id))).all())


def recipe_docs(saved: Iterable[Saved]) -> list[RecipeDoc]:
    return [s.doc for s in saved if isinstance(s.doc, RecipeDoc)]
