"""A story's or recipe's translations: one per language, each with its own review status.

A translation holds the document's text fields in another language (a story's title,
summary and body; a recipe's name, description, instructions and body). It is written as a
draft, sent for review and published like the document itself, but on its own: a
published story can have a Dutch translation still in review. Pages and displays show a
published translation's fields and fall back to the document's own text for every field
it leaves out (docs/stories.md, Translations).

Files: `stories/translations/<lang>/<slug>.md` (front matter with the fields and status,
the Markdown body) seed the repository like the stories themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from holobazaar.i18n import language_problem
from holobazaar.scenes.yamlsource import Problem, parse_yaml, pydantic_problems
from holobazaar.stories import files, service
from holobazaar.stories.files import split_front_matter
from holobazaar.stories.models import DocumentTranslation

TranslationStatus = Literal["draft", "review", "published"]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str | None = Field(None, max_length=262_144, description="Markdown.")


class StoryTranslation(_Fields):
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    summary: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class RecipeTranslation(_Fields):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    instructions: list[Annotated[str, Field(min_length=1, max_length=2000)]] | None = Field(
        None, max_length=100, description="The same steps as the recipe's, in order.")


FIELDS: dict[str, type[_Fields]] = {"story": StoryTranslation, "recipe": RecipeTranslation}


class NotAllowed(service.Conflict):
    """A transition the translation's status does not allow (409)."""


@dataclass(frozen=True)
class Translation:
    kind: str
    slug: str
    language: str
    status: str
    fields: dict[str, Any]
    revision: int
    updated_by: str
    updated_at: datetime
    reviewed_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "slug": self.slug, "language": self.language,
                "status": self.status, "fields": self.fields, "revision": self.revision,
                "updated_by": self.updated_by, "updated_at": self.updated_at.isoformat(),
                "reviewed_by": self.reviewed_by}


def _of(row: DocumentTranslation) -> Translation:
    return Translation(row.kind, row.slug, row.language, row.status, dict(row.fields),
                       row.revision, row.updated_by, row.updated_at, row.reviewed_by)


def checked_fields(kind: str, data: Any) -> dict[str, Any]:
    """The translated fields (only those given), or ValidationError."""
    return FIELDS[kind].model_validate(data).model_dump(exclude_none=True)


def _language(saved: service.Saved, language: str) -> None:
    if error := language_problem(language):
        raise ValueError(error)
    if language == saved.doc.language:
        raise ValueError(f"{language!r} is the document's own language")


def save(engine: Engine, kind: str, slug: str, language: str, data: Any, actor: str,
         status: TranslationStatus = "draft", *, create_only: bool = False) -> Translation | None:
    """Write a translation (created or replaced). Any edit of a published translation
    takes it back to draft (or review): it is published again after review. With
    `create_only`, an existing translation is left as it is (None)."""
    saved = service.get(engine, kind, slug)
    _language(saved, language)
    fields = checked_fields(kind, data)
    if not fields:
        raise ValueError("a translation needs at least one field")
    if status == "published":
        raise NotAllowed("a translation is published after review: save it as draft or "
                         "review, then publish it")
    with Session(engine) as session:
        # The repository's write lock first: two saves of a new translation at once (two
        # nodes importing the demo's files at start) queue, and the second one updates.
        service._lock(session)
        row = session.exec(select(DocumentTranslation).where(
            DocumentTranslation.kind == kind, DocumentTranslation.slug == slug,
            DocumentTranslation.language == language)).first()
        now = datetime.now(UTC)
        if row is not None and create_only:
            return None
        if row is None:
            row = DocumentTranslation(kind=kind, slug=slug, market=saved.market,
                                      language=language, status=status, fields=fields,
                                      updated_by=actor, updated_at=now)
        else:
            row.fields, row.status, row.updated_by, row.updated_at = fields, status, actor, now
            row.revision += 1
            row.reviewed_by = None
        session.add(row)
        session.commit()
        session.refresh(row)
        return _of(row)


def set_status(engine: Engine, kind: str, slug: str, language: str, to: TranslationStatus,
               actor: str, *, four_eyes: bool = False) -> Translation:
    """draft -> review -> published (and back to draft). Publishing needs review first;
    with the market's four-eyes rule, someone other than its last editor publishes it."""
    with Session(engine) as session:
        row = session.exec(select(DocumentTranslation).where(
            DocumentTranslation.kind == kind, DocumentTranslation.slug == slug,
            DocumentTranslation.language == language)).first()
        if row is None:
            raise service.NotFound(f"no {language} translation of {kind} {slug!r}")
        if to == "published":
            if row.status != "review":
                raise NotAllowed(f"the translation is {row.status}: send it for review first")
            if four_eyes and actor == row.updated_by:
                raise NotAllowed("this market's four-eyes rule: another curator publishes "
                                 "what you translated")
            row.reviewed_by = actor
        row.status = to
        session.add(row)
        session.commit()
        session.refresh(row)
        return _of(row)


def list_for(engine: Engine, kind: str, slug: str) -> list[Translation]:
    with Session(engine) as session:
        rows = session.exec(select(DocumentTranslation).where(
            DocumentTranslation.kind == kind, DocumentTranslation.slug == slug)
            .order_by(DocumentTranslation.language)).all()
        return [_of(r) for r in rows]


def published_fields(engine: Engine, kind: str, slug: str, language: str) -> dict[str, Any]:
    """A published translation's fields ({} when there is none): what a reader in
    `language` sees instead of the document's own text, field by field."""
    with Session(engine) as session:
        row = session.exec(select(DocumentTranslation).where(
            DocumentTranslation.kind == kind, DocumentTranslation.slug == slug,
            DocumentTranslation.language == language,
            DocumentTranslation.status == "published")).first()
        return dict(row.fields) if row is not None else {}


def published_in_market(engine: Engine, market: str) -> dict[tuple[str, str, str],
                                                            dict[str, Any]]:
    """Every published translation of a market's documents: (kind, slug, language) ->
    fields (the displays' `stories` binding keeps them with the documents)."""
    with Session(engine) as session:
        rows = session.exec(select(DocumentTranslation).where(
            DocumentTranslation.market == market,
            DocumentTranslation.status == "published")).all()
        return {(r.kind, r.slug, r.language): dict(r.fields) for r in rows}


def translated(doc: Any, fields: Mapping[str, Any], language: str) -> Any:
    """The document with the translation's fields in place (each one given; the others
    as written), in `language`. Instructions replace the recipe's only when they are as
    many steps."""
    update = {k: v for k, v in fields.items() if v}
    steps = update.get("instructions")
    if steps is not None and len(steps) != len(getattr(doc, "instructions", [])):
        update.pop("instructions")
    return doc.model_copy(update={**update, "language": language}) if update else doc


# ---- files ---------------------------------------------------------------------------


class TranslationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    translation_of: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")
    language: str = Field(pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
    status: TranslationStatus = "draft"
    title: str | None = None
    summary: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: list[str] | None = None


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def render_file(translation: Translation) -> str:
    """A translation's file (the layout `import_directory` reads): front matter, then the
    Markdown body."""
    front: dict[str, Any] = {"translation_of": translation.slug,
                             "language": translation.language, "status": translation.status}
    front.update({k: v for k, v in translation.fields.items() if k != "body"})
    text = yaml.dump(front, Dumper=files.Dumper, sort_keys=False, allow_unicode=True,
                     width=88, default_flow_style=False)
    body = str(translation.fields.get("body") or "").strip()
    return f"{files.FENCE}\n{text}{files.FENCE}\n" + (f"\n{body}\n" if body else "")


def export_directory(engine: Engine, directory: Path, market: str | None = None) -> list[Path]:
    """Every translation (any status) as `<directory>/translations/<lang>/<slug>.md`."""
    with Session(engine) as session:
        query = select(DocumentTranslation)
        if market is not None:
            query = query.where(DocumentTranslation.market == market)
        rows = [_of(r) for r in session.exec(query).all()]
    written = []
    for translation in sorted(rows, key=lambda t: (t.language, t.slug)):
        folder = directory / "translations" / translation.language
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{translation.slug}.md"
        path.write_bytes(render_file(translation).encode("utf-8"))
        written.append(path)
    return written


def import_directory(engine: Engine, directory: Path, actor: str, *,
                     only_new: bool = True) -> ImportReport:
    """Import `<directory>/translations/<lang>/<slug>.md`: those the repository does not
    have yet (`only_new`, serve's start-up import), else also those that differ from it
    (the CLI); a bad file is reported with its file and line."""
    report = ImportReport()
    for path in sorted((directory / "translations").glob("*/*.md")):
        name = str(path.relative_to(directory))
        split = split_front_matter(path.read_text(encoding="utf-8"), name)
        if isinstance(split, Problem):
            report.problems.append(split)
            continue
        front, body = split
        # A leading newline makes YAML's line numbers the file's (line 1 is the fence).
        doc = parse_yaml("\n" + front, name)
        if isinstance(doc, Problem):
            report.problems.append(doc)
            continue
        try:
            parsed = TranslationFile.model_validate(doc.data or {})
        except ValidationError as exc:
            report.problems.extend(pydantic_problems(doc, exc))
            continue
        try:
            saved = service.get(engine, "story", parsed.translation_of)
        except service.NotFound:
            try:
                saved = service.get(engine, "recipe", parsed.translation_of)
            except service.NotFound:
                report.problems.append(Problem(name, None, "translation_of",
                                               f"no story or recipe {parsed.translation_of!r}"))
                continue
        kind = saved.kind
        fields = parsed.model_dump(exclude_none=True,
                                   exclude={"translation_of", "language", "status"})
        if body.strip():
            fields["body"] = body.strip()
        have = next((t for t in list_for(engine, kind, saved.slug)
                     if t.language == parsed.language), None)
        if have is not None and (only_new or (have.fields == fields
                                              and have.status == parsed.status)):
            report.unchanged.append(name)  # the repository's copy is the one in use
            continue
        try:
            wanted = parsed.status
            made = save(engine, kind, saved.slug, parsed.language, fields, actor,
                        status="review" if wanted != "draft" else "draft",
                        create_only=only_new)
            if made is None:  # another node imported it a moment ago
                report.unchanged.append(name)
                continue
            if wanted == "published":
                set_status(engine, kind, saved.slug, parsed.language, "published", actor)
        except (ValueError, ValidationError) as exc:
            report.problems.append(Problem(name, None, "", str(exc)))
            continue
        report.imported.append(name)
    return report
