"""Stories and recipes as files: Markdown with YAML front matter (docs/stories.md).

Import is keyed by slug and idempotent (an unchanged file adds no revision); a bad file
is reported with its file, line and key while the good ones are imported. Export writes
one file per document in a fixed layout, so export -> import -> export is byte-identical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from holobazaar.redact import exception_text
from holobazaar.scenes.yamlsource import Problem, SourceDocument, parse_yaml, pydantic_problems
from holobazaar.stories import service
from holobazaar.stories.schema import DOC_TYPES, Document, RecipeDoc

FENCE = "---"


@dataclass(frozen=True)
class MarketFacts:
    """What a market has, to check a document's links (farms and inventory SKUs)."""

    producers: frozenset[str]
    skus: frozenset[str]


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def split_front_matter(text: str, name: str) -> tuple[str, str] | Problem:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != FENCE:
        return Problem(name, 1, "", "a story file starts with a '---' line, then YAML front "
                       "matter, then '---' and the Markdown body")
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") == FENCE:
            return "".join(lines[1:index]), "".join(lines[index + 1:])
    return Problem(name, 1, "", "front matter is not closed by a '---' line")


def parse_file(text: str, name: str, markets: Mapping[str, MarketFacts] | None = None,
               ) -> Document | list[Problem]:
    split = split_front_matter(text, name)
    if isinstance(split, Problem):
        return [split]
    front, body = split
    # A leading newline makes YAML's line numbers the file's (line 1 is the fence).
    parsed = parse_yaml("\n" + front, name)
    if isinstance(parsed, Problem):
        return [parsed]
    if not isinstance(parsed.data, dict):
        return [Problem(name, 2, "", "front matter must be a mapping of keys")]
    data: dict[str, Any] = {"slug": Path(name).stem, **parsed.data, "body": body.strip()}
    kind = data.get("kind", "story")
    model = DOC_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        return [parsed.problem(("kind",), f"kind must be story or recipe, not {kind!r}")]
    try:
        doc = model.model_validate(data)
    except ValidationError as exc:
        return pydantic_problems(parsed, exc)
    except ValueError as exc:
        return [Problem(name, None, "", str(exc))]
    problems = check_links(doc, parsed, markets)
    return problems or doc


def check_links(doc: Document, source: SourceDocument | None,
                markets: Mapping[str, MarketFacts] | None) -> list[Problem]:
    """Producers and SKUs must exist in the document's market (when markets are known)."""
    if markets is None:
        return []
    name = source.file if source else doc.slug

    def problem(path: tuple, message: str) -> Problem:
        return source.problem(path, message) if source else Problem(name, None, "", message)

    facts = markets.get(doc.market)
    if facts is None:
        return [problem(("market",), f"unknown market {doc.market!r} (known: "
                        f"{', '.join(sorted(markets)) or 'none'})")]
    problems = [problem(("producers", i), f"unknown producer {p!r} in {doc.market}")
                for i, p in enumerate(doc.producers) if p not in facts.producers]
    problems += [problem(("items", i), f"unknown item {s!r} in {doc.market}")
                 for i, s in enumerate(doc.items) if s not in facts.skus]
    if isinstance(doc, RecipeDoc):
        problems += [problem(("ingredients", i, "sku"), f"unknown item {g.sku!r} in "
                             f"{doc.market}") for i, g in enumerate(doc.ingredients)
                     if g.sku is not None and g.sku not in facts.skus]
    return problems


def story_files(directory: Path) -> list[Path]:
    """The documents' files: every *.md but READMEs and the translations/ folder (their
    translations, stories/translations.py)."""
    return sorted(p for p in directory.rglob("*.md") if p.name.lower() != "readme.md"
                  and p.relative_to(directory).parts[0] != "translations")


def import_directory(engine: Engine, directory: Path, actor: str, *, max_bytes: int,
                     markets: Mapping[str, MarketFacts] | None = None,
                     only_new: bool = False) -> ImportReport:
    """Import every *.md under `directory`. `only_new` skips slugs the database has
    (serve's start-up import: files seed the repository, later edits live in it)."""
    report = ImportReport()
    seen: dict[str, str] = {}
    for path in story_files(directory):
        name = str(path.relative_to(directory))
        try:
            if path.stat().st_size > max_bytes:
                report.problems.append(Problem(name, None, "", f"file is larger than "
                                               f"{max_bytes} bytes (story_max_bytes)"))
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.problems.append(Problem(name, None, "",
                                           f"cannot read file: {exception_text(exc)}"))
            continue
        result = parse_file(text, name, markets)
        if isinstance(result, list):
            report.problems.extend(result)
            continue
        if result.slug in seen:
            report.problems.append(Problem(name, None, "slug", f"slug {result.slug!r} is "
                                           f"already used by {seen[result.slug]}"))
            continue
        seen[result.slug] = name
        if only_new and service.slug_taken(engine, result.slug):
            report.unchanged.append(result.slug)
            continue
        try:
            saved = service.save(engine, result, actor, action="import", origin="import")
        except service.Conflict as exc:
            report.problems.append(Problem(name, None, "slug", str(exc)))
            continue
        (report.imported if saved.changed else report.unchanged).append(result.slug)
    return report


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    # Short lists of words (tags, producers, items) read best inline: [a, b, c].
    short = all(isinstance(v, str) and v and ":" not in v for v in value) and \
        sum(len(v) + 2 for v in value) <= 70
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=short)


def _float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    if value.is_integer():
        return dumper.represent_int(int(value))
    return dumper.represent_float(value)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
Dumper = _Dumper  # the files' YAML layout (translations' files use it too)
_Dumper.add_representer(float, _float)


def render_file(doc: Document) -> str:
    """The file for a document: front matter in the model's field order (empty and
    default values left out), then the Markdown body."""
    data = doc.model_dump(mode="json", exclude={"body"}, exclude_defaults=True)
    front: dict[str, Any] = {"kind": doc.kind, "slug": doc.slug, "market": doc.market,
                             "status": doc.status}
    for key, value in data.items():
        if key not in front and value not in (None, "", [], {}):
            front[key] = value
    if isinstance(doc, RecipeDoc):
        front["ingredients"] = [g.text if g.sku is None else {"text": g.text, "sku": g.sku}
                                for g in doc.ingredients]
    text = yaml.dump(front, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88,
                     default_flow_style=False)
    out = f"{FENCE}\n{text}{FENCE}\n"
    return out + (f"\n{doc.body.strip()}\n" if doc.body.strip() else "")


def export_directory(docs: Iterable[Document], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in sorted(docs, key=lambda d: d.slug):
        # Stories at the top, recipes in recipes/ (the layout of the demo's stories/).
        sub = directory / "recipes" if doc.kind == "recipe" else directory
        sub.mkdir(exist_ok=True)
        path = sub / f"{doc.slug}.md"
        path.write_bytes(render_file(doc).encode("utf-8"))
        written.append(path)
    return written


def market_facts(content) -> dict[str, MarketFacts]:
    """Producers and SKUs of every market in loaded scene content."""
    return {m.id: MarketFacts(frozenset(f.id for f in m.market.farms),
                              frozenset(i.sku for i in m.market.items))
            for m in content.markets.values()}
