"""A display's texts beside their translations, for the studio's translations page
(web/studio/display_translations.py): every translatable field of a display document with
its source text and its translation in one language, whether that source changed since the
translation was written (read from the display's revisions), and one language's
translations written through the YAML editor's own path (authoring.save_source: If-Match,
the loader's checks, a revision, the reload that streams every language channel)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString
from sqlmodel import col, select

from holobazaar.db import session_scope
from holobazaar.scenes import authoring, templates
from holobazaar.scenes.models_db import DisplayRevision
from holobazaar.scenes.service import SceneService

# The fields that translate, by object kind (models.py: DisplayTranslation, TextTranslation,
# PanelTranslation, LabelTranslation, AltTranslation; docs/scene-format.md, Languages).
TRANSLATABLE: dict[str, tuple[str, ...]] = {
    "display": ("title", "description"), "text": ("text",), "panel": ("title", "body"),
    "model": ("label",), "image": ("alt",)}
# How far back the revisions are read to tell a changed source (older ones rarely matter).
HISTORY = 100
MAX_TEXT = 2000  # models.py: Translated
_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)

Status = Literal["missing", "changed", "done", "values"]


@dataclass(frozen=True)
class TextField:
    key: str  # "display.title", "node.tagline.text": the form's name for it
    node: str | None  # the node's id (None: the display itself)
    kind: str  # display, text, panel, model, image
    name: str  # the field: title, text, body, label, alt, description
    source: str  # as written, in the market's default language
    translation: str  # "" when it has none in this language
    status: Status  # "values": a template of values only (nothing to translate)

    @property
    def long(self) -> bool:
        """Typed in a text area rather than a line."""
        return (self.name in ("body", "description") or "\n" in self.source
                or "\n" in self.translation or len(self.source) > 80)


def has_words(text: str) -> bool:
    """Whether a template has words of its own outside its `{{ }}`/`{% %}` tags: one that
    only places values ("{{ item.name }} — {{ item.price }}") has nothing to translate."""
    return any(ch.isalpha() for ch in _TAGS.sub("", text))


def _objects(doc: Any) -> Iterator[tuple[str, str | None, str, dict]]:
    """(key prefix, node id, kind, mapping) of every object of the document with text
    fields: the display, then its nodes depth-first (groups' children too)."""
    display = doc.get("display") if isinstance(doc, dict) else None
    if not isinstance(display, dict):
        return
    yield "display", None, "display", display

    def walk(nodes: Any) -> Iterator[tuple[str, str | None, str, dict]]:
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict):
                continue
            kind = str(node.get("kind"))
            if kind in TRANSLATABLE:
                yield f"node.{node.get('id')}", str(node.get("id")), kind, node
            if kind == "group":
                yield from walk(node.get("children"))

    yield from walk(display.get("nodes"))


def _translation(obj: dict, language: str, name: str) -> str:
    found = ((obj.get("translations") or {}).get(language) or {}).get(name)
    return found if isinstance(found, str) else ""


def texts_of(doc: Any, language: str) -> dict[str, tuple[str, str]]:
    """{key: (source, translation)} of every translatable field of the document."""
    out = {}
    for prefix, _node, kind, obj in _objects(doc):
        for name in TRANSLATABLE[kind]:
            source = obj.get(name)
            out[f"{prefix}.{name}"] = (source if isinstance(source, str) else "",
                                       _translation(obj, language, name))
    return out


def fields(doc: Any, language: str, history: list[Any] | None = None) -> list[TextField]:
    """The document's translatable fields in `language`, in the file's order; a field with
    neither a source nor a translation is left out. `history`: the display's earlier
    documents, oldest first, to tell which translations were written for a source that has
    changed since (without it, none is marked)."""
    written_for = sources_translated(history or [], doc, language)
    out = []
    for prefix, node, kind, obj in _objects(doc):
        for name in TRANSLATABLE[kind]:
            key = f"{prefix}.{name}"
            found = obj.get(name)
            source = found if isinstance(found, str) else ""
            translation = _translation(obj, language, name)
            if not source and not translation:
                continue
            status: Status
            if not has_words(source) and not translation:
                status = "values"
            elif not translation:
                status = "missing"
            elif written_for.get(key, source) != source:
                status = "changed"
            else:
                status = "done"
            out.append(TextField(key, node, kind, name, source, translation, status))
    return out


def sources_translated(history: list[Any], doc: Any, language: str) -> dict[str, str]:
    """{field key: its source as it was when its current translation was written}: the
    documents are walked oldest first, ending with `doc`; the first document (or a change
    of the translation) notes the source of the moment."""
    written_for: dict[str, str] = {}
    last: dict[str, str] = {}
    for document in [*history, doc]:
        for key, (source, translation) in texts_of(document, language).items():
            if key not in last or translation != last[key]:
                written_for[key] = source
                last[key] = translation
    return written_for


def history(scenes: SceneService, market: str, display: str) -> list[Any]:
    """The display's documents before its current one, oldest first: the file as it was
    before its last revisions (their diffs undone from the current file: a file that came
    with the content has no revision of its own) and each revision's document. A deletion
    ends a history (what came before was another display of the same id)."""
    with session_scope(scenes.engine) as session:
        rows = session.exec(select(DisplayRevision.document, DisplayRevision.diff).where(
            DisplayRevision.market == market, DisplayRevision.display == display)
            .order_by(col(DisplayRevision.number).desc()).limit(HISTORY)).all()
    try:
        lines: list[str] | None = authoring.display_path(
            scenes, market, display).read_text("utf-8").splitlines(keepends=True)
    except (authoring.AuthoringError, OSError, UnicodeDecodeError):
        lines = None
    out: list[Any] = []
    for document, diff in rows:
        if document is None:
            lines = None
            break
        out.append(document)
        lines = undo(lines, diff) if lines is not None else None
    if lines:
        with contextlib.suppress(YAMLError):
            out.append(YAML(typ="safe").load("".join(lines)))
    return out[::-1]


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def undo(new: list[str], diff: str) -> list[str] | None:
    """The file's lines before a unified diff (difflib's, as a revision records it) given
    its lines after; None when they are not what the diff led to."""
    hunks: list[tuple[int, list[str], list[str]]] = []  # (start in new, after, before)
    for line in diff.splitlines(keepends=True):
        if found := _HUNK.match(line):
            count = int(found[2]) if found[2] is not None else 1
            hunks.append((int(found[1]) - 1 if count else int(found[1]), [], []))
        elif hunks and line[:1] in (" ", "+", "-"):
            if line[:1] != "-":
                hunks[-1][1].append(line[1:])
            if line[:1] != "+":
                hunks[-1][2].append(line[1:])
    old: list[str] = []
    at = 0  # the next line of `new` not taken yet
    for start, after, before in hunks:
        if start < at or new[start:start + len(after)] != after:
            return None
        old.extend(new[at:start])
        old.extend(before)
        at = start + len(after)
    return old + new[at:]


def clean(value: str) -> str:
    """A typed translation as written to the file: the form's CRLF as LF, without the
    spaces around it (an empty one removes the translation: the source shows)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def apply(doc: Any, language: str, values: dict[str, str]) -> list[str]:
    """Set the translations `values` ({field key: text}) in `language` on `doc` (in place);
    returns the keys that changed. An empty text removes the field's translation (and an
    object's emptied translations). A key the document does not have: AuthoringError 422."""
    known = {f"{prefix}.{name}": (obj, name) for prefix, _n, kind, obj in _objects(doc)
             for name in TRANSLATABLE[kind]}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise refused({unknown[0]: "the display has no such text (reload the page)"})
    changed = []
    # Every refused text at once (the models would stop at the first kind of error and
    # the loader's template checks only run after them).
    problems: dict[str, str] = {}
    for key, value in values.items():
        obj, name = known[key]
        text = clean(value)
        if text == _translation(obj, language, name):
            continue
        if len(text) > MAX_TEXT:
            problems[key] = f"at most {MAX_TEXT} characters (this one has {len(text)})"
        elif error := templates.check_syntax(text):
            problems[key] = error
        changed.append(key)
        translations = obj.setdefault("translations", {})
        in_language = translations.setdefault(language, {})
        if text:
            # A text of several lines as a block (`|-`), as the scene files write them.
            in_language[name] = LiteralScalarString(text) if "\n" in text else text
        else:
            in_language.pop(name, None)
            if not in_language:
                translations.pop(language)
            if not translations:
                obj.pop("translations")
    if problems:
        raise refused(problems)
    return changed


def refused(problems: dict[str, str]) -> authoring.AuthoringError:
    """A 422 naming the fields ({field key: message})."""
    return authoring.AuthoringError(422, {"message": "invalid translation", "errors": [
        {"key": key, "message": message} for key, message in problems.items()]})


def pointers(doc: Any, language: str) -> dict[str, str]:
    """{JSON pointer of a field's translation in the document: the field's key}, to name
    the field a refusal points at."""
    out = {}

    def walk(nodes: Any, base: str) -> None:
        for i, node in enumerate(nodes if isinstance(nodes, list) else []):
            if not isinstance(node, dict):
                continue
            kind = str(node.get("kind"))
            for name in TRANSLATABLE.get(kind, ()):
                out[f"{base}/{i}/translations/{language}/{name}"] = f"node.{node.get('id')}.{name}"
            if kind == "group":
                walk(node.get("children"), f"{base}/{i}/children")

    for name in TRANSLATABLE["display"]:
        out[f"/display/translations/{language}/{name}"] = f"display.{name}"
    display = doc.get("display") if isinstance(doc, dict) else None
    walk(display.get("nodes") if isinstance(display, dict) else None, "/display/nodes")
    return out


def field_errors(doc: Any, language: str, exc: authoring.AuthoringError) -> dict[str, str]:
    """A refusal's findings by field key (the first of each); what names no translated
    field is the form's ("form")."""
    detail: dict[str, Any] = (exc.detail if isinstance(exc.detail, dict)
                              else {"message": str(exc.detail)})
    by_pointer = pointers(doc, language)
    errors: dict[str, str] = {}
    for problem in detail.get("errors") or [{"message": detail.get("message", "")}]:
        key = problem.get("key")
        if key is None:
            where = str(problem.get("pointer", ""))
            # A finding inside a translation (".../translations/nl/text/0") names its field.
            key = next((k for p, k in by_pointer.items()
                        if where == p or where.startswith(p + "/")), "form")
        errors.setdefault(key, str(problem.get("message", "")))
    return errors


async def save(scenes: SceneService, market: str, display: str, language: str,
               values: dict[str, str], if_match: str, actor: str) -> tuple[str, list[str]]:
    """Write `values` as the display's translations in `language` under the revision
    `if_match` the page was read at: (the new etag, the keys that changed); nothing is
    written when none changed. AuthoringError: 404 (no such display or language), 412 (the
    display changed meanwhile: nothing written), 422 (refused: by field key in
    detail["errors"] through `field_errors`)."""
    found = scenes.market(market)
    if found is None or language not in found.market.market.languages[1:]:
        raise authoring.AuthoringError(404, f"{language!r} is not one of the market's "
                                       "other languages")
    doc, etag = authoring.read_source(scenes, market, display)
    if not if_match or if_match.strip() != etag:
        raise authoring.AuthoringError(412, {"message": "the display changed since you "
                                             "loaded it", "etag": etag})
    changed = apply(doc, language, values)
    if not changed:
        return etag, []
    # The YAML editor's path: If-Match again (a save in between is refused), the models,
    # the loader's cross-file checks (templates render in every language), the revision.
    new = await authoring.save_source(scenes, market, display, doc, if_match, actor,
                                      action=f"translate {language}")
    return new, changed
